"""The command forms in Teams: opening one, answering its people picker, and running what it submits.

- `/tap`, `/tap issue` or `/tap onboard` without a user (`FormCommand`) opens the form privately: in a channel or
  group chat the card goes to the 1:1 chat, as every answer does.
- The picker's typeahead: Teams sends an `application/search` invoke, `value: {queryText, dataset, queryOptions:
  {skip, top}}`, and shows the results of the answer `{"type": "application/vnd.microsoft.search.searchResponse",
  "value": {"results": [{"title", "value"}]}}` (learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/
  cards/dynamic-search). The SDK's own `adaptive_card.search` route requires a `kind` the Teams payload does not
  carry, so this route reads the invoke itself. Who may search is PeopleFinder's rule (operators; for onboarding, a
  manager among their own direct reports); anyone else gets an error answer with the typed command's refusal and
  nothing is searched. At most 15 results; `skip` and `top` page inside those. A person who cannot get a pass is
  listed with the reason.
- The submit button (`tap.submitForm`): the values go through the typed command's checks (`command_from_fields`)
  and the tenant's reason rules; a bad field, or a refusal that concerns one field (the person, the lifetime, the
  start, the reason), comes back on the same card next to that field with everything typed kept. A good form
  runs the command exactly as if typed (`CommandRunner.run`): the answer, the pass included, is delivered as for a
  typed command, privately, and the form settles into a short summary.

The message action's dialog (bot/teams/message_action.py) shows the same card (`FormFlow.card`) and reads its
values with `FormFlow.submitted` / `FormFlow.card_again`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from microsoft_agents.activity import Activity, ActivityTypes, AdaptiveCardInvokeResponse, InvokeResponse
from microsoft_agents.hosting.core import TurnContext
from microsoft_agents.hosting.core.app.adaptive_card import factory

from bot.domain.auditing import Subject
from bot.domain.commands import (
    MAX_NAME_LENGTH,
    Command,
    FieldErrors,
    FormCommand,
    IssueCommand,
    OnboardCommand,
    command_from_fields,
    is_user_reference,
)
from bot.domain.eligibility import START_MAX_AHEAD, clamp_lifetime
from bot.domain.errors import Refused, Rule, TapError, UserNotFound
from bot.domain.model import TapPolicy
from bot.domain.people import Candidate, PeopleFinder
from bot.domain.ports import Clock
from bot.domain.reasons import ReasonRefused, ReasonRules
from bot.domain.service import TapService
from bot.teams.turn import Turn
from cards.buttons import FormButton
from cards.formatting import format_minutes, local_and_utc
from cards.forms import (
    DATASETS,
    SEARCH_RESULTS_MAX,
    FormOffer,
    FormState,
    FormWord,
    Person,
    form_settled_card,
    lifetime_choices,
    render_form,
)
from cards.passes import CardJson

logger = logging.getLogger(__name__)

SEARCH_INVOKE = "application/search"
MAX_TITLE = 200  # a dropdown line: name, address, department · job title, and why not
MAX_WHY = 110
ANSWER_FOLLOWS = "My answer follows in the next message."

PERSON_RULES = frozenset(
    {
        Rule.SELF_ISSUE,
        Rule.GUEST,
        Rule.DISABLED,
        Rule.ROLE_HOLDER,
        Rule.PROTECTED_GROUP,
        Rule.OUTSIDE_POLICY_SCOPE,
        Rule.NOT_MANAGER,
        Rule.HAS_SIGN_IN_METHODS,
    }
)
FIELD_OF_RULE = {
    **dict.fromkeys(PERSON_RULES, "person"),
    Rule.LIFETIME_RANGE: "lifetime",
    Rule.START_IN_PAST: "startDate",
    Rule.START_TOO_LATE: "startDate",
}


class CommandRunning(Protocol):
    async def run(self, turn: Turn, command: Command) -> None: ...


def is_people_search(context: TurnContext) -> bool:
    activity = context.activity
    return activity.type == ActivityTypes.invoke and activity.name == SEARCH_INVOKE


class FormFlow:
    """Opens the forms, answers their people picker, and reads what they submit."""

    def __init__(
        self,
        *,
        service: TapService,
        people: PeopleFinder,
        reasons: ReasonRules,
        onboarding_lifetime_minutes: int | None,
        default_start_hour: int,
        clock: Clock,
    ) -> None:
        self._service = service
        self._people = people
        self._reasons = reasons
        self._onboarding_lifetime = onboarding_lifetime_minutes
        self._default_start_hour = default_start_hour
        self._clock = clock

    # --- opening --------------------------------------------------------------------------------------------

    async def open(self, turn: Turn, command: FormCommand) -> None:
        """The handler of `FormCommand`: the empty form, privately. A caller the command would refuse gets that
        refusal instead (raised: Turns tells it privately)."""
        await turn.reply_privately(card=await self.card(turn, command.word))

    async def card(self, turn: Turn, word: FormWord, state: FormState | None = None) -> CardJson:
        """The form for a caller allowed to use it (else the command's refusal is raised); `turn.card` or the
        Turn's answers decorate it as the bot shows it."""
        people = await self._listed(turn, word)
        return await self._render(turn, word, people, state or FormState())

    async def card_again(
        self,
        turn: Turn,
        word: FormWord,
        values: Mapping[str, str],
        *,
        errors: Mapping[str, str] | None = None,
        refusal: TapError | None = None,
    ) -> CardJson:
        """The form shown again after a submit: what was typed, the person behind the person field, and each problem
        next to its field (a refusal about the person under the person, and so on; any other refusal on top).
        The caller's right to the form is checked before the person is looked up."""
        people = await self._listed(turn, word)
        errors = dict(errors or {})
        problem = None
        if refusal is not None:
            name = field_of(refusal)
            if name is None:
                problem = refusal.user_message
            else:
                errors[name] = refusal.user_message
        person = await self._person(values.get("person", ""), listed=people if word == "onboard" else None)
        state = FormState(values=dict(values), person=person, errors=errors, problem=problem)
        return await self._render(turn, word, people, state)

    async def _listed(self, turn: Turn, word: FormWord) -> tuple[Person, ...]:
        """The picker's own rule, checked before anything is shown (raises the typed command's refusal). Empty text
        finds nobody in the directory; for a manager's onboarding form it lists their direct reports, which the
        form offers without a search."""
        listed = await self._people.suggest(
            turn.caller, "", limit=SEARCH_RESULTS_MAX if word == "onboard" else 0, purpose=word
        )
        return tuple(Person(candidate.user.object_id, search_result(candidate)["title"]) for candidate in listed)

    async def _render(self, turn: Turn, word: FormWord, people: tuple[Person, ...], state: FormState) -> CardJson:
        return render_form(word, self._offer(turn, word, await self._service.tap_policy(), people), state)

    def _offer(self, turn: Turn, word: FormWord, policy: TapPolicy, people: tuple[Person, ...]) -> FormOffer:
        now = self._clock.now()
        default = policy.default_lifetime_minutes
        if word == "onboard":
            default = clamp_lifetime(self._onboarding_lifetime, policy)
        rules = self._reasons
        if rules.ticket_pattern is not None:
            hint = (
                f"must contain a ticket number like {rules.ticket_example}"
                if rules.ticket_example
                else ("must contain a ticket number")
            )
        else:
            hint = "required" if rules.required else "optional"
        return FormOffer(
            lifetimes=lifetime_choices(policy.minimum_lifetime_minutes, policy.maximum_lifetime_minutes, default),
            default_lifetime=default,
            one_time_forced=policy.one_time_forced,
            reason_required=rules.reason_needed,
            reason_placeholder=rules.example(),
            reason_hint=hint,
            timezone=turn.timezone.key,
            today=now.astimezone(turn.timezone).date(),
            last_day=(now + START_MAX_AHEAD).astimezone(turn.timezone).date(),
            people=people,
        )

    # --- reading what was submitted -------------------------------------------------------------------------

    def submitted(self, turn: Turn, word: FormWord, values: Mapping[str, str]) -> Command:
        """The command the form asks for, with the typed command's checks and the tenant's reason rules.
        Raises FieldErrors naming every field to change."""
        errors: dict[str, str] = {}
        command: Command | None = None
        try:
            command = command_from_fields(
                word, values, now=self._clock.now(), tz=turn.timezone, default_start_hour=self._default_start_hour
            )
        except FieldErrors as bad:
            errors.update(bad.errors)
        if "reason" not in errors:
            problem = self._reasons.problem(values.get("reason", ""))
            if problem is not None:
                errors["reason"] = problem
        if errors or command is None:
            raise FieldErrors(errors)
        return command

    async def _person(self, value: str, *, listed: tuple[Person, ...] | None = None) -> Person | None:
        """Who the person field names, for its title: an exact reference, looked up for a caller who may search the
        directory; a manager's onboarding form (`listed`: her reports) only ever names the people it lists."""
        value = value.strip()
        if not is_user_reference(value):
            return None
        if listed:
            return next((person for person in listed if person.object_id.lower() == value.lower()), None)
        try:
            user = await self._service.find_user(Subject(value))
        except TapError:
            return None
        return Person(user.object_id, user.label)

    async def summary(self, turn: Turn, command: Command) -> list[tuple[str, str]]:
        """What a submitted form asked for, for its settled card."""
        if isinstance(command, IssueCommand):
            request = command.request
            target, lifetime, start, reason = request.target, request.lifetime_minutes, request.start_at, request.reason
        elif isinstance(command, OnboardCommand):
            onboard = command.request
            target, lifetime, start, reason = onboard.target, onboard.lifetime_minutes, onboard.start_at, onboard.reason
        else:
            return []
        person = await self._person(target)
        rows = [("Person", person.title if person is not None else target)]
        rows.append(("Lifetime", format_minutes(lifetime) if lifetime else "The default"))
        if isinstance(command, IssueCommand):
            rows.append(("One-time use", "Yes" if command.request.one_time else "As the policy says"))
        rows.append(("Start", _start_text(start, turn, onboarding=isinstance(command, OnboardCommand))))
        if reason:
            rows.append(("Reason", reason))
        return rows

    # --- the people picker ----------------------------------------------------------------------------------

    async def on_search(self, turn: Turn) -> None:
        """Answers the picker's `application/search` invoke (never with a message in the chat)."""
        response = await self._search(turn)
        await turn.context.send_activity(
            Activity(
                type=ActivityTypes.invoke_response,
                value=InvokeResponse(
                    status=int(response.status_code or 200),
                    body=response.model_dump(mode="json", by_alias=True, exclude_none=True),
                ),
            )
        )

    async def _search(self, turn: Turn) -> AdaptiveCardInvokeResponse:
        query = read_search(turn.context.activity.value)
        if isinstance(query, str):
            return factory.bad_request(query)
        try:
            candidates = await self._people.suggest(
                turn.caller, query.text, limit=min(SEARCH_RESULTS_MAX, query.skip + query.top), purpose=query.word
            )
        except Refused as refusal:
            return factory.error(403, refusal.user_message, "Forbidden")
        except TapError as failure:
            return factory.error(503, failure.user_message, "ServiceUnavailable")
        window = candidates[query.skip : query.skip + query.top]
        return factory.search_response({"results": [search_result(candidate) for candidate in window]})


@dataclass(frozen=True)
class SearchQuery:
    word: FormWord
    text: str
    skip: int
    top: int


def read_search(value: object) -> SearchQuery | str:
    """The invoke's value as a query, or the sentence saying what is wrong with it (the invoke is input)."""
    if not isinstance(value, dict):
        return "The search request has no value."
    dataset = value.get("dataset")
    word: FormWord | None = None
    for form, name in DATASETS.items():
        if name == dataset:
            word = form
    if word is None:
        return "I don't search that dataset."
    text = value.get("queryText", "")
    if not isinstance(text, str) or len(text) > MAX_NAME_LENGTH:
        return "The search text is not one I can read."
    options = value.get("queryOptions") or {}
    if not isinstance(options, dict):
        return "The search options are not ones I can read."
    skip = _count(options.get("skip"), default=0)
    top = _count(options.get("top"), default=SEARCH_RESULTS_MAX)
    if skip is None or top is None:
        return "The search options are not ones I can read."
    return SearchQuery(word, text, min(skip, SEARCH_RESULTS_MAX), min(top, SEARCH_RESULTS_MAX))


def _count(value: object, *, default: int) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def search_result(candidate: Candidate) -> dict[str, str]:
    """One dropdown line: who (name, UPN, department · job title), and why not when they cannot get a pass."""
    user = candidate.user
    title = user.label
    work = " · ".join(part for part in (user.department, user.job_title) if part)
    if work:
        title += f" · {work}"
    if candidate.refusal:
        title += f" (not eligible: {_why(candidate.refusal, user.label)})"
    return {"title": title[:MAX_TITLE], "value": user.object_id}


def _why(refusal: str, label: str) -> str:
    """The refusal's first sentence, without the name the line already shows: "holds the directory role …"."""
    why = refusal.removeprefix(label).strip()
    why = why.split(". ", 1)[0].rstrip(".")
    return why if len(why) <= MAX_WHY else why[: MAX_WHY - 1] + "…"


def field_of(refusal: TapError) -> str | None:
    """The form field a refusal is about, or None when it concerns the whole request."""
    if isinstance(refusal, ReasonRefused):
        return "reason"
    if isinstance(refusal, UserNotFound):
        return "person"
    if isinstance(refusal, Refused):
        return FIELD_OF_RULE.get(refusal.rule)
    return None


def _start_text(start: datetime | None, turn: Turn, *, onboarding: bool) -> str:
    if start is None:
        return "The new hire's first morning (or now)" if onboarding else "Now"
    return local_and_utc(start, turn.timezone)


class FormSubmissions:
    """The form's submit button: runs the command as if typed, or shows the form again with what to change."""

    def __init__(self, *, forms: FormFlow, runner: CommandRunning) -> None:
        self._forms = forms
        self._runner = runner

    async def on_submit(self, turn: Turn, data: object) -> AdaptiveCardInvokeResponse:
        button = FormButton.parse(data)
        word: FormWord = "onboard" if button.word == "onboard" else "issue"
        try:
            command = self._forms.submitted(turn, word, button.values)
            await self._runner.run(turn, command)
        except FieldErrors as bad:
            return turn.card_answer(await self._forms.card_again(turn, word, button.values, errors=bad.errors))
        except TapError as refusal:
            return turn.card_answer(await self._forms.card_again(turn, word, button.values, refusal=refusal))
        summary = await self._forms.summary(turn, command)
        return turn.card_answer(form_settled_card(word, summary, ANSWER_FOLLOWS))
