"""The message action "Issue a Temporary Access Pass" (issue 11 item 5): on any message (say, a ticket notification in
a help-desk channel), Teams' "…" menu opens the issue form in a dialog, prefilled from that message.

- `composeExtension/fetchTask` (manifest command `MESSAGE_ACTION_ID`, `fetchTask: true`): answers
  `{"task": {"type": "continue", "value": {"title", "card"}}}` with the issue form (bot/teams/forms.py, the card
  of cards/forms.py) prefilled: the person is the first person the message mentions, else its author (never the
  caller: nobody gets a pass for themselves); the reason is the message's text made plain and cut to
  MAX_REASON_LENGTH. The message payload is client input like typed text: a prefill only proposes, the submit is
  checked as a typed command is. A person is an object id as Teams sends it in the payload, or a Teams `29:` id
  looked up in the conversation's roster (the Agents Playground sends those; bot/teams/mentions.py).
- `composeExtension/submitAction`: the dialog's values run through the typed command's checks and the tenant's
  reason rules, then `CommandRunner.run` exactly as if typed. Bad fields or a refusal about one field come back
  in the dialog on the same form (`task/continue`); otherwise the dialog closes with one short sentence
  (`task/message`).
- Who may use it is decided from the activity alone, as for the typed command: a caller who may not issue gets the
  command's refusal in the dialog, before anyone is looked up.
- The dialog's turn answers nothing where the message was: that chat may be a channel, or a chat between people
  the bot is not part of. Every answer (the pass card above all) goes to the caller's 1:1 chat with the bot
  (`DialogTurn`); the dialog only says that it did, or why it could not.

In dialogs Teams (and the Playground) submit with `Action.Submit` (its data plus the inputs arrive as
`value.data`), so the form's `Action.Execute` becomes an `Action.Submit` with the same data.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from typing import Any, Protocol

from microsoft_agents.activity import Activity, ActivityTypes, InvokeResponse
from microsoft_agents.hosting.core import TurnContext

from bot.domain.commands import Command, FieldErrors
from bot.domain.commands.table import MESSAGE_ACTION_ID, MESSAGE_ACTION_TITLE
from bot.domain.errors import TapError
from bot.domain.reasons import shorten_reason
from bot.teams.activity import ConversationKind
from bot.teams.delivery import ADAPTIVE_CARD, INSTALL_ADVICE, DeliveryFailed, card_message
from bot.teams.forms import FormFlow
from bot.teams.mentions import MAX_MENTIONS, resolve_member
from bot.teams.turn import SENT_PRIVATELY, Turn
from cards.buttons import BadButtonData, FormButton
from cards.forms import FormWord
from cards.passes import CardJson

logger = logging.getLogger(__name__)

COMMAND_ID = MESSAGE_ACTION_ID
FETCH_TASK = "composeExtension/fetchTask"
SUBMIT_ACTION = "composeExtension/submitAction"
UNKNOWN_COMMAND = "I don't know that action. Use “Issue a Temporary Access Pass” from a message's menu."
NOTHING_SENT = "Nothing was sent."
MAX_PAYLOAD_TEXT = 20_000  # more than any Teams message; only the first MAX_REASON_LENGTH characters are kept


class CommandRunning(Protocol):
    async def run(self, turn: Turn, command: Command) -> None: ...


def is_message_action(context: TurnContext) -> bool:
    activity = context.activity
    return activity.type == ActivityTypes.invoke and activity.name in (FETCH_TASK, SUBMIT_ACTION)


@dataclass(frozen=True)
class DialogTurn(Turn):
    """A turn whose answers all go to the caller's 1:1 chat; `notes` collects what the dialog then says."""

    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, turn: Turn) -> DialogTurn:
        facts = replace(turn.facts, kind=ConversationKind.DIALOG)
        return cls(turn.context, facts, turn.presentation, turn.delivery, turn.sign_in)

    @property
    def closing(self) -> str:
        return self.notes[-1] if self.notes else NOTHING_SENT

    async def reply_here(self, text: str | None = None, *, card: CardJson | None = None) -> None:
        if text == SENT_PRIVATELY:  # a handler telling "here" that it answered privately: the dialog says so
            self.notes.append(SENT_PRIVATELY)
            text = None
        if card is not None:
            await self.send_privately(card_message(self.card(card)))
        if text is not None and not await self._send(self.text(text)):
            self.notes.append(text)  # a text never holds a pass: when the 1:1 chat is out of reach, the dialog shows it

    async def reply_privately(self, text: str | None = None, *, card: CardJson | None = None) -> None:
        await self.reply_here(text, card=card)

    async def send_privately(self, *activities: Activity) -> bool:
        for activity in activities:
            if not await self._send(activity, say_why=True):
                return False
        return True

    async def _send(self, activity: Activity, *, say_why: bool = False) -> bool:
        try:
            await self.delivery.send_privately(self.context, self.facts, activity)
        except DeliveryFailed as failure:
            if say_why:
                self.notes.append(f"I couldn't answer you privately ({failure}). {INSTALL_ADVICE}")
            return False
        self.notes.append(SENT_PRIVATELY)
        return True


class MessageAction:
    """Answers the message action's two invokes (see the module's docstring)."""

    def __init__(self, *, forms: FormFlow, runner: CommandRunning) -> None:
        self._forms = forms
        self._runner = runner

    async def on_invoke(self, turn: Turn) -> None:
        activity = turn.context.activity
        value = activity.value if isinstance(activity.value, dict) else {}
        dialog = DialogTurn.of(turn)
        try:
            if value.get("commandId") != COMMAND_ID:
                body = task_message(UNKNOWN_COMMAND)
            elif activity.name == FETCH_TASK:
                body = await self._fetch(dialog, value)
            else:
                body = await self._submit(dialog, value)
        except BadButtonData as bad:
            body = task_message(bad.sentence)
        except TapError as refusal:
            body = task_message(refusal.user_message)
        await turn.context.send_activity(
            Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=200, body=body))
        )

    async def _fetch(self, turn: DialogTurn, value: Mapping[str, Any]) -> dict[str, Any]:
        payload = value.get("messagePayload")
        payload = payload if isinstance(payload, dict) else {}
        values: dict[str, str] = {}
        person = await self._person_of(turn, payload)
        if person:
            values["person"] = person
        reason = reason_of(payload)
        if reason:
            values["reason"] = reason
        # card_again checks the caller's right to the form before it looks the person up (a refusal is raised).
        return self._dialog(turn, await self._forms.card_again(turn, "issue", values))

    async def _submit(self, turn: DialogTurn, value: Mapping[str, Any]) -> dict[str, Any]:
        button = FormButton.parse(value.get("data"))
        word: FormWord = "onboard" if button.word == "onboard" else "issue"
        try:
            command = self._forms.submitted(turn, word, button.values)
            await self._runner.run(turn, command)
        except FieldErrors as bad:
            return self._dialog(turn, await self._forms.card_again(turn, word, button.values, errors=bad.errors))
        except TapError as refusal:
            return self._dialog(turn, await self._forms.card_again(turn, word, button.values, refusal=refusal))
        return task_message(turn.closing)

    def _dialog(self, turn: Turn, card: CardJson) -> dict[str, Any]:
        content = turn.card(as_dialog_card(card))
        card_attachment = {"contentType": ADAPTIVE_CARD, "content": content}
        return {"task": {"type": "continue", "value": {"title": MESSAGE_ACTION_TITLE, "card": card_attachment}}}

    async def _person_of(self, turn: Turn, payload: Mapping[str, Any]) -> str:
        """The object id of the first person the message mentions, else of its author; never the caller."""
        mentions = _list(payload.get("mentions"))[:MAX_MENTIONS]  # each may cost a roster lookup: the payload is input
        candidates = [_user_id(mention.get("mentioned")) for mention in mentions]
        candidates.append(_user_id(payload.get("from")))
        for member_id in candidates:
            if not member_id:
                continue
            object_id = await resolve_member(turn.context, member_id)
            if object_id and object_id != turn.caller.object_id:
                return object_id
        return ""


def task_message(text: str) -> dict[str, Any]:
    """Closes the dialog (or answers instead of one) with one sentence."""
    return {"task": {"type": "message", "value": text}}


def as_dialog_card(card: CardJson) -> CardJson:
    """The form as a dialog submits it: each Action.Execute becomes an Action.Submit carrying the same data."""
    dialog = copy.deepcopy(card)

    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        if node.get("type") == "Action.Execute":
            submit = {key: node[key] for key in ("id", "title", "style", "isEnabled") if key in node}
            return {"type": "Action.Submit", **submit, "data": node.get("data") or {}}
        return {key: convert(item) for key, item in node.items()}

    return convert(dialog)


def reason_of(payload: Mapping[str, Any]) -> str:
    """The message's text as a proposed reason: plain (markup and mentions' tags dropped, their names kept), one
    line, at most MAX_REASON_LENGTH characters."""
    body = payload.get("body")
    if not isinstance(body, dict) or not isinstance(body.get("content"), str):
        return ""
    content = body["content"][:MAX_PAYLOAD_TEXT]
    if str(body.get("contentType", "html")).lower() == "html":
        content = plain_text(content)
    return shorten_reason(content)


class _Text(HTMLParser):
    _BREAKS = frozenset({"br", "p", "div", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._BREAKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BREAKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def plain_text(html_text: str) -> str:
    parser = _Text()
    parser.feed(html_text)
    parser.close()
    return " ".join("".join(parser.parts).replace("\u00a0", " ").split())


def _list(value: object) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _user_id(identity: object) -> str:
    """The id of a person in a message payload's identity set (`{"user": {"id", "userIdentityType"}}`); bots,
    applications and other identity kinds name nobody."""
    if not isinstance(identity, dict):
        return ""
    user = identity.get("user")
    if not isinstance(user, dict):
        return ""
    kind = user.get("userIdentityType")
    member_id = user.get("id")
    if kind not in (None, "aadUser") or not isinstance(member_id, str):
        return ""
    return member_id.strip()
