"""The command forms: `/tap issue` or `/tap onboard` without a user opens one of these cards.

Each form is drawn from the command table's field rows (`FieldSpec`: name, label, kind, required, placeholder), so
a field added to the table appears here without editing this file. Every input has a label, `isRequired` where the
command needs it and an `errorMessage` the client shows when it is left empty; what only the bot can check (a person
who may not get a pass, a start in the past, a reason without a ticket number) comes back on the same card, in a
line right under its field.

The person is a people picker: Teams' dynamic typeahead, an `Input.ChoiceSet` with `style: "filtered"` and
`choices.data: {"type": "Data.Query", "dataset": "people"}`. As the technician types, Teams sends the bot an
`application/search` invoke (`value: {queryText, dataset, queryOptions: {skip, top}}`) and shows the results the bot
answers (`{"type": "application/vnd.microsoft.search.searchResponse", "value": {"results": [{title, value}]}}`),
at most 15 of them (learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/dynamic-search). The
value of a chosen result is the person's object id. Teams documents the typeahead on cards of version 1.5; the
official schema only declares `choices.data` and `filtered` from 1.6 (microsoft/AdaptiveCards
schemas/1.6.0/adaptive-card.json), so these cards stay version 1.5 and the tests validate them against 1.5 plus
exactly those definitions (tests/harness/card_schema.py). A client without the typeahead shows a filtered list of
the preset choice, and still submits what was typed, which the command then resolves as a name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from microsoft_teams.cards.core import (
    CardElement,
    ChoiceSetInput,
    DateInput,
    ExecuteAction,
    QueryData,
    TextInput,
    TimeInput,
    ToggleInput,
)
from microsoft_teams.cards.core import Choice as CardChoice

from bot.domain.commands import FieldSpec, FormWord, command_spec
from bot.domain.reasons import MAX_REASON_LENGTH
from cards import verbs
from cards.buttons import FormButton
from cards.formatting import format_minutes
from cards.passes import CardJson, facts, heading, render, sentence

PEOPLE_DATASET = "people"
"""The `Data.Query` dataset of the issue form's picker: everyone the caller may search, marked when they cannot get
a pass."""
ONBOARD_PEOPLE_DATASET = "people.onboard"
"""The onboarding form's picker: a manager finds their own direct reports (an operator, anyone), marked by the
onboarding rules. A separate dataset because the search invoke carries nothing else that tells the forms apart."""
DATASETS: dict[FormWord, str] = {"issue": PEOPLE_DATASET, "onboard": ONBOARD_PEOPLE_DATASET}

SEARCH_RESULTS_MAX = 15
"""Teams shows at most 15 options in a typeahead dropdown."""

STANDARD_LIFETIMES = (60, 120, 240, 480, 720, 1440, 2880, 4320, 7200, 10080, 20160, 43200)

TITLES: dict[FormWord, str] = {
    "issue": "Issue a Temporary Access Pass",
    "onboard": "Request a first-day pass for your new hire",
}
SUBMIT_TITLES: dict[FormWord, str] = {"issue": "Issue the pass", "onboard": "Send the request"}
FIX_FIELDS = "Nothing was done yet: correct the fields marked below and submit again."


@dataclass(frozen=True)
class Person:
    """A person the form names already (prefilled, or chosen before the form came back with errors)."""

    object_id: str
    title: str


@dataclass(frozen=True)
class FormOffer:
    """What the tenant allows, as the form offers it: lifetimes inside the policy, the one-time rule, the reason
    rule, and the technician's time zone for the start inputs."""

    lifetimes: tuple[int, ...]
    default_lifetime: int
    one_time_forced: bool
    reason_required: bool
    reason_placeholder: str
    reason_hint: str
    timezone: str
    today: date
    last_day: date
    people: tuple[Person, ...] = ()  # listed without a search: a manager's own direct reports, for onboarding


@dataclass(frozen=True)
class FormState:
    """What the form shows: values typed so far (by field name, as the card submits them), the person behind the
    person field, the sentence per field the bot found wrong, and one for the whole form."""

    values: Mapping[str, str] = field(default_factory=dict)
    person: Person | None = None
    errors: Mapping[str, str] = field(default_factory=dict)
    problem: str | None = None


def lifetime_choices(minimum: int, maximum: int, default: int, *extra: int) -> tuple[int, ...]:
    """The lifetimes a form offers: the usual ones inside the policy's range, its ends and its default."""
    wanted = {minimum, maximum, default, *extra, *STANDARD_LIFETIMES}
    return tuple(sorted(minutes for minutes in wanted if minimum <= minutes <= maximum))


def form_fields(word: FormWord) -> tuple[FieldSpec, ...]:
    """The fields of the command's form, from the command table."""
    spec = command_spec(word)
    return spec.fields if spec is not None else ()


def issue_form_card(offer: FormOffer, state: FormState | None = None) -> CardJson:
    """`/tap issue` without a user: whom, how long, one-time, from when (the technician's time), and why."""
    return _form_card("issue", form_fields("issue"), offer, state or FormState())


def onboard_form_card(offer: FormOffer, state: FormState | None = None) -> CardJson:
    """`/tap onboard` without a user: which new hire, from when, how long, and why; an operator may have to approve."""
    return _form_card("onboard", form_fields("onboard"), offer, state or FormState())


def render_form(word: FormWord, offer: FormOffer, state: FormState | None = None) -> CardJson:
    """The form of `word` ("issue" or "onboard")."""
    return issue_form_card(offer, state) if word == "issue" else onboard_form_card(offer, state)


def form_settled_card(word: FormWord, summary: Sequence[tuple[str, str]], note: str) -> CardJson:
    """The form once submitted: what was asked, and where the answer is. No inputs, no button."""
    return render(heading(f"{TITLES[word]}: sent"), facts(*summary), sentence(note, subtle=True))


def _form_card(word: FormWord, fields: Sequence[FieldSpec], offer: FormOffer, state: FormState) -> CardJson:
    body: list[CardElement] = [
        heading(TITLES[word]),
        sentence(
            f"Times are in your time zone ({offer.timezone}). Leave the start empty to start now."
            if word == "issue"
            else f"Times are in your time zone ({offer.timezone}). Leave the start empty for the new hire's first "
            "morning."
        ),
    ]
    if state.problem or state.errors:
        body.append(sentence(state.problem or FIX_FIELDS, color="Attention").model_copy(update={"id": "formProblem"}))
    for spec in fields:
        body.extend(_field(word, spec, offer, state))
    action = ExecuteAction(
        title=SUBMIT_TITLES[word], verb=verbs.SUBMIT_FORM, data=FormButton(word).data(), style="positive"
    )
    return render(*body, actions=[action])


def _field(word: FormWord, spec: FieldSpec, offer: FormOffer, state: FormState) -> list[CardElement]:
    value = state.values.get(spec.name)
    element: CardElement
    match spec.kind:
        case "person":
            element = _person(word, spec, offer, state)
        case "lifetime":
            element = _lifetime(spec, offer, value)
        case "toggle":
            if offer.one_time_forced:
                # Adaptive Cards has no read-only toggle: the fixed rule is said, and nothing is submitted for it.
                element = sentence("One-time use: always (the tenant's policy requires it).")
            else:
                element = ToggleInput(
                    id=spec.name,
                    label=spec.label,
                    title="The pass works for one sign-in only",
                    value="true" if value == "true" else "false",
                    value_on="true",
                    value_off="false",
                    error_message=f"{spec.label}: on or off.",
                )
        case "date":
            element = DateInput(
                id=spec.name,
                label=_in_zone(spec.label, offer.timezone),
                value=value or None,
                min=offer.today.isoformat(),
                max=offer.last_day.isoformat(),
                placeholder=spec.placeholder or None,
                is_required=spec.required or None,
                error_message=f"{spec.label}: a day from {offer.today.isoformat()} to {offer.last_day.isoformat()}.",
            )
        case "time":
            element = TimeInput(
                id=spec.name,
                label=_in_zone(spec.label, offer.timezone),
                value=value or None,
                placeholder=spec.placeholder or None,
                is_required=spec.required or None,
                error_message=f"{spec.label}: a time of day (HH:MM).",
            )
        case _:
            element = _reason(spec, offer, value) if spec.name == "reason" else _text(spec, value)
    elements: list[CardElement] = [element]
    error = state.errors.get(spec.name)
    if error:
        elements.append(sentence(error, color="Attention").model_copy(update={"id": f"{spec.name}Error"}))
    return elements


def _person(word: FormWord, spec: FieldSpec, offer: FormOffer, state: FormState) -> ChoiceSetInput:
    choices = [CardChoice(title=person.title, value=person.object_id) for person in offer.people]
    listed = {person.object_id for person in offer.people}
    value = state.values.get(spec.name) or None
    if state.person is not None:
        if state.person.object_id not in listed:
            choices.insert(0, CardChoice(title=state.person.title, value=state.person.object_id))
        value = value or state.person.object_id
    elif value and value not in listed:
        choices.insert(0, CardChoice(title=value, value=value))  # what was submitted, kept so it can be corrected
    return ChoiceSetInput(
        id=spec.name,
        label=spec.label,
        style="filtered",
        choices=choices,
        choices_data=QueryData(dataset=DATASETS[word]),
        value=value,
        placeholder=spec.placeholder or "Type a name, mail address or user principal name",
        is_required=True,
        error_message="Choose the person: type part of their name and pick them from the list.",
    )


def _lifetime(spec: FieldSpec, offer: FormOffer, value: str | None) -> ChoiceSetInput:
    chosen = value if value and value.isdigit() and int(value) in offer.lifetimes else str(offer.default_lifetime)
    return ChoiceSetInput(
        id=spec.name,
        label=spec.label,
        style="compact",
        choices=[CardChoice(title=_lifetime_title(minutes, offer), value=str(minutes)) for minutes in offer.lifetimes],
        value=chosen,
        is_required=spec.required or None,
        error_message=f"{spec.label}: choose one of the lifetimes the tenant's policy allows.",
    )


def _lifetime_title(minutes: int, offer: FormOffer) -> str:
    return f"{format_minutes(minutes)} (default)" if minutes == offer.default_lifetime else format_minutes(minutes)


def _reason(spec: FieldSpec, offer: FormOffer, value: str | None) -> TextInput:
    label = f"{spec.label} ({offer.reason_hint})" if offer.reason_hint else spec.label
    return TextInput(
        id=spec.name,
        label=label,
        value=value or None,
        placeholder=offer.reason_placeholder or spec.placeholder or None,
        max_length=spec.max_length or MAX_REASON_LENGTH,
        is_required=(spec.required or offer.reason_required) or None,
        error_message=f"{spec.label}: {offer.reason_hint or 'why the pass is needed'}.",
    )


def _text(spec: FieldSpec, value: str | None) -> TextInput:
    return TextInput(
        id=spec.name,
        label=spec.label,
        value=value or None,
        placeholder=spec.placeholder or None,
        max_length=spec.max_length,
        is_required=spec.required or None,
        error_message=f"{spec.label}: this field is needed." if spec.required else None,
    )


def _in_zone(label: str, timezone: str) -> str:
    """'Start date (empty: today)' -> 'Start date (empty: today, Europe/Berlin)'; 'Start' -> 'Start (Europe/Berlin)'."""
    return f"{label[:-1]}, {timezone})" if label.endswith(")") else f"{label} ({timezone})"
