"""The data each card button carries, per verb: built here for the cards and parsed here for the handlers.

Action.Execute data comes back through the client, so it is input like any typed text: a forged or damaged
button may carry a list where a number belongs, a number too large for the database, or nothing at all. Each
`parse` returns a typed value or raises `BadButtonData`, whose sentence the presser reads; nothing else is done.
Who may press a button on the object it names is checked by the handler, never assumed from the card.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.domain.commands import is_user_reference
from bot.domain.model import PassRequest
from bot.domain.reasons import MAX_REASON_LENGTH

MAX_ID = 2**31 - 1  # bulk job ids are INTEGER columns: larger numbers cannot name a job
MAX_LIFETIME_MINUTES = 60 * 24 * 366  # a button naming more is damaged (the policy allows at most 30 days)
MAX_LABEL = 300
MAX_NOTE = 500
MAX_METHOD_ID = 64
EARLIEST_START = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_START = datetime(2100, 1, 1, tzinfo=UTC)
_CARD_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_REQUEST_ID = _CARD_ID
_METHOD_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_COMMAND_TEXT = 600  # a command's canonical text: a verb, an object id, options and a reason of 300 characters

DAMAGED = "This button's data is damaged, so I did nothing."


class BadButtonData(ValueError):
    """The button's data is not what the bot put on the card; `sentence` says so to the presser."""

    def __init__(self, sentence: str = DAMAGED) -> None:
        super().__init__(sentence)
        self.sentence = sentence


def _fields(data: object) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise BadButtonData()
    return data


def _id(fields: Mapping[str, Any], key: str) -> int:
    """A positive database id: an int, or digits as text (Teams keeps numbers, a resent card may not)."""
    value = fields.get(key)
    if isinstance(value, str) and 0 < len(value) <= 10 and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise BadButtonData()
    return value


def _text(fields: Mapping[str, Any], key: str, *, max_length: int, pattern: re.Pattern[str] | None = None) -> str:
    value = fields.get(key)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise BadButtonData()
    if pattern is not None and not pattern.match(value):
        raise BadButtonData()
    return value


def _optional_text(fields: Mapping[str, Any], key: str, *, max_length: int) -> str:
    value = fields.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadButtonData()
    return value[:max_length]


def _switch(fields: Mapping[str, Any], key: str) -> bool:
    """An Input.Toggle's value ("true"/"false"), or a boolean the card put in the data itself."""
    value = fields.get(key, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise BadButtonData()


@dataclass(frozen=True)
class JobButton:
    """Cancel, Retry failed rows, Send the results: the bulk job it acts on."""

    job_id: int

    def data(self) -> dict[str, Any]:
        return {"jobId": self.job_id}

    @classmethod
    def parse(cls, data: object) -> JobButton:
        return cls(_id(_fields(data), "jobId"))


@dataclass(frozen=True)
class ConfirmJobButton:
    """Issue/Revoke N passes on a preflight card; `replaceExisting` comes from the switch (or the data)."""

    job_id: int
    replace_existing: bool = False

    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"jobId": self.job_id}
        if self.replace_existing:
            data["replaceExisting"] = "true"
        return data

    @classmethod
    def parse(cls, data: object) -> ConfirmJobButton:
        fields = _fields(data)
        return cls(_id(fields, "jobId"), _switch(fields, "replaceExisting"))


@dataclass(frozen=True)
class HandedOverButton:
    """I have handed it (them) over: the pass card or results page to hide."""

    card_id: str

    def data(self) -> dict[str, Any]:
        return {"cardId": self.card_id}

    @classmethod
    def parse(cls, data: object) -> HandedOverButton:
        return cls(_text(_fields(data), "cardId", max_length=36, pattern=_CARD_ID))


@dataclass(frozen=True)
class DecisionButton:
    """Approve / Deny on a request card; `note` is the card's text input."""

    request_id: str
    note: str = ""

    def data(self) -> dict[str, Any]:
        return {"requestId": self.request_id}

    @classmethod
    def parse(cls, data: object) -> DecisionButton:
        fields = _fields(data)
        request_id = _text(fields, "requestId", max_length=36, pattern=_REQUEST_ID)
        return cls(request_id, _optional_text(fields, "note", max_length=MAX_NOTE))


@dataclass(frozen=True)
class KeepButton:
    """Keep the existing pass: changes nothing, names the user for the settled card."""

    label: str

    def data(self) -> dict[str, Any]:
        return {"label": self.label[:MAX_LABEL]}

    @classmethod
    def parse(cls, data: object) -> KeepButton:
        label = _optional_text(_fields(data), "label", max_length=MAX_LABEL)
        return cls(label or "this user")


@dataclass(frozen=True)
class ReplaceButton:
    """Replace it: the issue request the replace question asked about, and the pass it showed."""

    target: str
    label: str
    lifetime_minutes: int
    one_time: bool
    replace_method_id: str
    start_at: datetime | None = None
    reason: str = ""  # the request's reason, checked again by the service like a typed one
    # The verification of the person the request already carries (a replay found a new pass): the service consumes
    # it only if it is this presser's, for this user, confirmed and unused.
    verification_id: str | None = None

    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "target": self.target,
            "label": self.label[:MAX_LABEL],
            "lifetimeMinutes": self.lifetime_minutes,
            "oneTime": self.one_time,
            "replaceMethodId": self.replace_method_id,
        }
        if self.start_at is not None:
            data["startAt"] = self.start_at.isoformat()
        if self.reason:
            data["reason"] = self.reason[:MAX_REASON_LENGTH]
        if self.verification_id:
            data["verificationId"] = self.verification_id
        return data

    @classmethod
    def parse(cls, data: object) -> ReplaceButton:
        fields = _fields(data)
        target = _text(fields, "target", max_length=320)
        if not is_user_reference(target):
            raise BadButtonData()
        lifetime = fields.get("lifetimeMinutes")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int) or not 1 <= lifetime <= MAX_LIFETIME_MINUTES:
            raise BadButtonData()
        one_time = fields.get("oneTime", False)
        if not isinstance(one_time, bool):
            raise BadButtonData()
        method_id = _text(fields, "replaceMethodId", max_length=MAX_METHOD_ID, pattern=_METHOD_ID)
        label = _optional_text(fields, "label", max_length=MAX_LABEL) or target
        reason = _optional_text(fields, "reason", max_length=MAX_REASON_LENGTH)
        verification_id = (
            _text(fields, "verificationId", max_length=36, pattern=_REQUEST_ID) if "verificationId" in fields else None
        )
        start = _start(fields.get("startAt"))
        return cls(target, label, lifetime, one_time, method_id, start, reason, verification_id)

    def request(self) -> PassRequest:
        return PassRequest(
            target=self.target,
            lifetime_minutes=self.lifetime_minutes,
            one_time=self.one_time,
            start_at=self.start_at,
            replace=True,
            replace_method_id=self.replace_method_id,
            reason=self.reason,
            verification_id=self.verification_id,
        )


@dataclass(frozen=True)
class ChoosePersonButton:
    """One candidate on a "Which Megan?" card: the command as if typed with that person's object id, the person's
    label for the settled card, and whom the choice was offered to.

    The command is re-parsed and re-authorised for whoever presses (commands.py `command_text` wrote it), so
    forging it gains nothing a typed command would not; `offeredTo` only keeps a choice with the person it was for.
    """

    command: str
    label: str
    offered_to: str

    def data(self) -> dict[str, Any]:
        return {"command": self.command, "label": self.label[:MAX_LABEL], "offeredTo": self.offered_to}

    @classmethod
    def parse(cls, data: object) -> ChoosePersonButton:
        fields = _fields(data)
        command = _text(fields, "command", max_length=MAX_COMMAND_TEXT)
        offered_to = _text(fields, "offeredTo", max_length=36, pattern=_OBJECT_ID)
        label = _optional_text(fields, "label", max_length=MAX_LABEL)
        return cls(command, label or "the person you chose", offered_to.lower())


def _start(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise BadButtonData()
    try:
        start = datetime.fromisoformat(value)
    except ValueError:
        raise BadButtonData() from None
    if start.tzinfo is None or not EARLIEST_START <= start < LATEST_START:
        raise BadButtonData()
    return start.astimezone(UTC)


@dataclass(frozen=True)
class VerificationButton:
    """Confirm / This is not them on a manager's card, and Cancel on the technician's tracking card: the
    verification they act on. Who may press is checked against the verification itself when pressed."""

    verification_id: str

    def data(self) -> dict[str, Any]:
        return {"verificationId": self.verification_id}

    @classmethod
    def parse(cls, data: object) -> VerificationButton:
        return cls(_text(_fields(data), "verificationId", max_length=36, pattern=_REQUEST_ID))


FORM_WORDS = ("issue", "onboard")
MAX_FORM_VALUE = 1000  # longer than anything a form field takes (a reason is at most 300): such a value is damaged
MAX_FORM_VALUES = 20


@dataclass(frozen=True)
class FormButton:
    """The submit button of a command form (cards/forms.py): which form, and the values of its inputs, which Teams
    merges into the data. The values are the user's input like typed text: the command's own checks read them."""

    word: str
    values: Mapping[str, str] = field(default_factory=dict)

    def data(self) -> dict[str, Any]:
        return {"form": self.word}

    @classmethod
    def parse(cls, data: object) -> FormButton:
        fields = _fields(data)
        word = fields.get("form")
        if word not in FORM_WORDS or len(fields) > MAX_FORM_VALUES + 1:
            raise BadButtonData()
        values: dict[str, str] = {}
        for key, value in fields.items():
            if key == "form":
                continue
            if not isinstance(key, str) or not isinstance(value, str) or len(value) > MAX_FORM_VALUE:
                raise BadButtonData()
            values[key] = value
        return cls(str(word), values)
