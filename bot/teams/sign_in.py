"""Sign-in for delegated writes (issue 14) at the Teams edge: the sign-in card, the `signin/*` invokes, the actions
that wait for a sign-in, and `/tap signout`.

How it goes (the design and whose rights count: docs/deployment.md, "Delegated writes"; facts: sso-obo.md):
- A write with the technician's own rights finds no token of theirs: the Graph adapter raises `SignInRequired`
  before sending anything. In the technician's own turn (`Turn.ask_sign_in`: typed command, name choice, form
  submit, Replace button, message action) `SignIns.ask` saves a `SignInWait` (kind `command`, the canonical command
  text) and sends, privately in the 1:1 chat, one sentence and an OAuthCard built from the token service's
  GetTokenOrSignInResource. A channel or group chat only learns that something was sent privately.
- Teams tries single sign-on with the card's `tokenExchangeResource` and sends `signin/tokenExchange {id,
  connectionName, token}`: the token service exchanges the Teams token for a Graph token (its on-behalf-of), the
  bot keeps it in memory (`DelegatedTokens.remember`) and answers 200, then runs what waited. Any failure answers
  412 `{id, connectionName, failureDetail}`, and Teams shows the card's Sign in button. Teams sends one exchange per
  client endpoint with the same id: only the first is exchanged (ProcessedActivities, across replicas); a
  duplicate gets the first's outcome, or asks the token service whether a token is there now.
- After the button, Teams sends `signin/verifyState {state}`: GetToken with that code. `signin/failure` gets a
  sentence. Sign-in happens only in the 1:1 chat; the identity is the authenticated activity's, and the Teams token
  offered in an exchange must be that same person's.
- What waited runs as the person who signed in, in their personal chat: kind `command` through the CommandRunner,
  every rule again; the other kinds through the handlers their flows register in `SignInResumes`. A wait lives 10
  minutes and is taken once.
- The sandbox has no Teams single sign-on. The Agents Playground draws the OAuthCard (its Sign in opens the sandbox's
  sign-in page, whose 6-digit code its Redeem code posts into the chat as a message); any other client gets the
  sandbox's Adaptive Card that opens the same page. A message that is exactly that code signs the person in
  (`on_code`). Teams never needs that code flow (its client finishes the sign-in and sends verifyState), so a real
  deployment does not accept typed codes: one way in fewer, and no code for anyone to be talked into typing.

No token value is logged, stored in SQL, put in a card, a sentence or an exception: tokens go from the token service's
answer straight to `DelegatedTokens`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from dataclasses import replace as dataclass_replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import aiohttp
import jwt
from microsoft_agents.activity import (
    Activity,
    ActivityTypes,
    Attachment,
    InvokeResponse,
    TokenExchangeRequest,
    TokenResponse,
)
from microsoft_agents.hosting.core import TurnContext, TurnState
from microsoft_agents.hosting.core.authorization import AuthenticationConstants, ClaimsIdentity
from microsoft_agents.hosting.core.connector.client import UserTokenClient

from bot.domain.commands import Command, CommandError, IssueCommand, SignOutCommand, command_text, parse_command
from bot.domain.errors import SignInRequired, TapError
from bot.domain.model import Caller, Recipient
from bot.domain.ports import Clock, DelegatedTokens, ProcessedActivities, SignInWaits
from bot.domain.records import SignInWait, SignInWaitKind
from bot.teams.activity import object_id_of
from bot.teams.delivery import INSTALL_ADVICE, DeliveryFailed, PrivateChat, PrivateDelivery, card_message, text_message
from bot.teams.message_action import DialogTurn
from bot.teams.presentation import Presentation
from bot.teams.turn import SENT_PRIVATELY, Turn
from cards.sign_in import OAUTH_CARD, magic_code_card, oauth_attachment_content

logger = logging.getLogger(__name__)

TEAMS_CHANNEL = "msteams"
TOKEN_EXCHANGE = "signin/tokenExchange"
VERIFY_STATE = "signin/verifyState"
SIGN_IN_FAILURE = "signin/failure"
SIGN_IN_INVOKES = frozenset({TOKEN_EXCHANGE, VERIFY_STATE, SIGN_IN_FAILURE})
SIGN_IN_WAIT = timedelta(minutes=10)
EXCHANGE_MEMORY = timedelta(days=1)  # how long an exchange id stays known (Teams' duplicates come within seconds)
MAGIC_CODE = re.compile(r"\d{6}")
_METHOD_ID = re.compile(r"[A-Za-z0-9-]{1,64}")  # an authentication method's id (cards/buttons.py checks the same)
_BOUND_PASS = "\nreplaces pass "  # typed and canonical texts hold no line break
_FAILURE_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_ID_LENGTH = 256
MAX_STATE_LENGTH = 1024

ASKED = (
    "Sign in to tapbot first: passes are written with your own Entra rights, and I have no sign-in of yours to use. "
    "Nothing was changed yet."
)
WILL_RUN = "Once you have signed in (within 10 minutes), I run {what} for you, every check again."
RUN_AGAIN = "Once you have signed in, run it again."
ASKED_ELSEWHERE = "Sign in first: I sent you a sign-in card in our personal chat. {then}"
SIGN_IN_SERVICE_DOWN = (
    "I couldn't reach the sign-in service, so nothing was changed. Try again in a minute; if it keeps happening, "
    "tell IT."
)
SIGNED_IN_NOTHING_WAITING = (
    "You're signed in. Nothing was waiting for it (an action waits 10 minutes for a sign-in): run your command again."
)
VERIFY_FAILED = (
    "Signing in did not finish, so nothing ran yet. Press Sign in on the card again, or run your command again."
)
CODE_FAILED = "That code did not work: it is used, expired or not yours. Press Sign in on the card again for a new one."
ONLY_PERSONAL = "Sign in from your personal chat with me: that is where I send the sign-in card."
NOT_DELEGATED = "tapbot writes passes with its own permission here: there is no sign-in of yours to use or forget."
SIGNED_OUT = "Signed out: I forgot your sign-in. The next pass you issue or revoke asks you to sign in again."
SIGN_OUT_PARTLY = (
    "I forgot your sign-in here, but couldn't reach the sign-in service to end it there. Try /tap signout again in "
    "a minute."
)
TOKEN_NOT_USABLE = (
    "I have a sign-in of yours but couldn't use it, so nothing was changed. Type /tap signout, then try again."
)
SOMEONE_ELSES_ENDED = (
    "The sign-in the token service held for your account was someone else's (another person signed in at a "
    "sign-in link of yours), so I did not use it and ended it. "
)
SOMEONE_ELSES_KEPT = (
    "The sign-in the token service holds for your account is someone else's, and I couldn't end it, so nothing was "
    "changed. Type /tap signout, then try again."
)
RESUME_FAILED = (
    "Something went wrong on my side while running what waited for your sign-in. Run it again; if it keeps "
    "happening, tell IT and quote reference {reference}."
)

ResumeHandler = Callable[[Turn, SignInWait], Awaitable[None]]


class SignInResumes:
    """What runs once a person has signed in, per kind of wait (`SignInWaitKind`).

    Each flow registers its own kind without editing this file: `sign_ins.resumes.register(SignInWaitKind.BULK,
    bulk.resume_after_sign_in)`. A handler gets the turn of the person who just signed in (their 1:1 chat, `turn.caller`
    is them, from the authenticated activity) and the wait, already taken (no other replica runs it). It checks
    everything again (the wait only says what to try); a `TapError` it raises is told to that person, a
    `SignInRequired` of theirs sends a new sign-in card. Kind `command` is registered by `SignIns.run_commands_with`.
    """

    def __init__(self) -> None:
        self._handlers: dict[SignInWaitKind, ResumeHandler] = {}

    def register(self, kind: SignInWaitKind, handler: ResumeHandler) -> None:
        if kind in self._handlers:
            raise ValueError(f"sign-in waits of kind {kind.value} have a handler already")
        self._handlers[kind] = handler

    def handler_for(self, kind: SignInWaitKind) -> ResumeHandler | None:
        return self._handlers.get(kind)


class RunsCommands(Protocol):
    async def run(self, turn: Turn, command: Command) -> None: ...


class UserTokenClients(Protocol):
    """bot/teams/agent.py's TrustedClientFactory: token service clients, in a turn or (context None) outside one."""

    async def user_token_client(
        self, context: TurnContext | None, claims_identity: ClaimsIdentity, use_anonymous: bool = False
    ) -> UserTokenClient: ...


@dataclass(frozen=True)
class SignInSettings:
    connection_name: str  # TAPBOT_OAUTH_CONNECTION
    app_id: str  # the bot's app id (the sandbox's stand-in there): msAppId in the sign-in state
    allowed_tenant_ids: frozenset[str]
    typed_codes: bool = False  # the sandbox: a link-and-code card besides the OAuthCard, and typed codes accepted


class SignInUnavailable(TapError):
    """The token service could not be asked for a sign-in card (its reason is never shown)."""

    def __init__(self) -> None:
        super().__init__(SIGN_IN_SERVICE_DOWN)


def is_sign_in_invoke(context: TurnContext) -> bool:
    activity = context.activity
    return activity.type == ActivityTypes.invoke and activity.name in SIGN_IN_INVOKES


class SignIns:
    """The sign-in card, the `signin/*` invokes, the waits and their resumption, `/tap signout` (module docstring)."""

    def __init__(
        self,
        *,
        settings: SignInSettings,
        clients: UserTokenClients,
        tokens: DelegatedTokens,
        waits: SignInWaits,
        processed: ProcessedActivities,
        delivery: PrivateDelivery,
        presentation: Presentation,
        clock: Clock,
    ) -> None:
        self._settings = settings
        self._clients = clients
        self._tokens = tokens
        self._waits = waits
        self._processed = processed
        self._delivery = delivery
        self._presentation = presentation
        self._clock = clock
        self.resumes = SignInResumes()
        self._runner: RunsCommands | None = None
        self._exchanges: dict[str, asyncio.Future[bool]] = {}  # exchanges running in this process, by key
        self._code_wanted: dict[str, datetime] = {}  # sandbox: who was sent a sign-in card, until when
        self._resuming: set[str] = set()  # people whose waits run right now because a token was found when asking

    def run_commands_with(self, runner: RunsCommands) -> None:
        """Waits of kind `command` run through this runner (it exists only once the handlers do)."""
        self._runner = runner
        self.resumes.register(SignInWaitKind.COMMAND, self._resume_command)

    # --- asking ---------------------------------------------------------------------------------------------------

    async def ask(self, turn: Turn, needed: SignInRequired, command: Command | None = None) -> str:
        """`Turn.ask_sign_in`: the caller's own write needs their sign-in; `command` runs again after it."""
        ref = _command_ref(command) if command is not None else None
        return await self.ask_in_turn(turn, kind=SignInWaitKind.COMMAND if ref else None, ref=ref)

    async def ask_in_turn(
        self, turn: Turn, *, kind: SignInWaitKind | None, ref: str | None, what: str | None = None
    ) -> str:
        """Saves the wait (when `kind` and `ref` are given) and sends the caller, privately, one sentence and the
        sign-in card. Returns the sentence for where they acted (a button's answer, a dialog). `what` names what
        runs after the sign-in ("the approval of Megan Bowen's pass"); default: the command, or nothing."""
        caller = turn.caller
        then = self._then(kind, ref, what)
        if kind is not None and ref is not None:
            await self._save_wait(caller.object_id, kind, ref)
        try:
            chat = await self._delivery.private_chat(turn.facts.recipient, current=turn.facts)
        except DeliveryFailed as failure:
            sentence = f"I couldn't send you the sign-in card privately ({failure}). {INSTALL_ADVICE}"
            await turn.reply_here(sentence)
            return sentence
        card, ended = await self._sign_in_card(turn.context, turn.facts.recipient, chat)
        if card is None:  # the token service held a token for them after all (now kept): run what waited
            user = caller.object_id.lower()
            if user in self._resuming:  # that token did not do either: no loop
                logger.warning("a token of %s from the token service was not usable", user)
                raise SignInRequired(user, TOKEN_NOT_USABLE)
            self._resuming.add(user)
            try:
                # What waited may have waited in the personal chat: it runs there, never announced or answered in a
                # channel or group chat (as after an exchange, which Teams sends to the 1:1 chat).
                private = None if turn.is_personal or isinstance(turn, DialogTurn) else DialogTurn.of(turn)
                await self._resume(turn if private is None else private, announce=False)
            finally:
                self._resuming.discard(user)
            if private is None:
                return "You were signed in already, so it ran."
            answered = SENT_PRIVATELY in private.notes
            sentence = SENT_PRIVATELY if answered else f"I couldn't answer you privately. {INSTALL_ADVICE}"
            if turn.context.activity.type == ActivityTypes.message:  # a button's answer is the returned sentence
                await turn.reply_here(sentence)
            return sentence
        activities = [turn.text(f"{ended}{ASKED} {then}"), *self._card_activities(card)]
        if not await turn.send_privately(*activities):
            return f"I couldn't send you the sign-in card privately. {then}"
        return ASKED_ELSEWHERE.format(then=then)

    async def ask_privately(self, recipient: Recipient, *, kind: SignInWaitKind, ref: str, what: str) -> bool:
        """Outside any turn (a bulk run that lost its requester's token): saves the wait and sends the sign-in card
        to the person's 1:1 chat. False when it could not be sent (the wait stays until it expires)."""
        await self._save_wait(recipient.object_id, kind, ref)
        try:
            chat = await self._delivery.private_chat(recipient)
            try:
                card, ended = await self._sign_in_card(None, recipient, chat)
            except SignInRequired as kept:  # someone else's session under their account that could not be ended
                await self._delivery.send(chat, text_message(self._presentation.text_prefix + kept.user_message))
                return False
            if card is None:
                # A token of theirs is there after all: the next attempt of the caller's flow finds it (kept above).
                return True
            sentence = f"{ended}{ASKED} {self._then(kind, ref, what)}"
            for activity in (text_message(self._presentation.text_prefix + sentence), *self._card_activities(card)):
                await self._delivery.send(chat, activity)
        except (DeliveryFailed, SignInUnavailable) as failure:
            logger.warning("could not send a sign-in card to %s: %s", recipient.object_id, type(failure).__name__)
            return False
        return True

    def _then(self, kind: SignInWaitKind | None, ref: str | None, what: str | None) -> str:
        if what:
            return WILL_RUN.format(what=what)
        if kind is SignInWaitKind.COMMAND and ref:
            text, method_id = _command_of_ref(ref)
            bound = " (replacing only the pass you were shown)" if method_id else ""
            return WILL_RUN.format(what=f"“{text}”{bound}")
        return RUN_AGAIN

    async def _save_wait(self, user_id: str, kind: SignInWaitKind, ref: str) -> None:
        now = self._clock.now()
        await self._waits.save_sign_in_wait(SignInWait(user_id.lower(), kind, ref, now, now + SIGN_IN_WAIT))

    async def _sign_in_card(
        self, context: TurnContext | None, recipient: Recipient, chat: PrivateChat
    ) -> tuple[dict[str, Any] | None, str]:
        """(the OAuthCard's content from GetTokenOrSignInResource for the person's 1:1 chat, a sentence to put
        before the usual one or ""). No card when the token service answered with a token of theirs instead (kept,
        as after a sign-in).

        A token of someone else's (they signed in at a link of this person's) is never used: the session is ended at
        the token service, which then gives a sign-in link, and the sentence says why. It sits under this person's
        own channel account, so ending it touches nobody else's sign-in; leaving it would give no link at all, and a
        paused bulk job no way on but for its requester to find out about /tap signout. Raises SignInRequired
        (SOMEONE_ELSES_KEPT) when it cannot be ended."""
        state_activity = _state_activity(recipient, chat)
        ended = ""
        foreign = False
        try:
            async with self._client(context) as client:
                answer = await client.get_token_or_sign_in_resource(self._settings.connection_name, state_activity)
                held = answer.token_response
                if held is not None and held.token:
                    if await self._remember(_caller_of(recipient), recipient.channel_account_id, held):
                        return None, ""
                    logger.warning("ending a token service session of someone else under %s", recipient.object_id)
                    foreign = True
                    await client.sign_out_user(
                        recipient.channel_account_id, self._settings.connection_name, TEAMS_CHANNEL
                    )
                    answer = await client.get_token_or_sign_in_resource(self._settings.connection_name, state_activity)
                    if answer.token_response is not None and answer.token_response.token:
                        raise SignInRequired(recipient.object_id, SOMEONE_ELSES_KEPT)
                    ended = SOMEONE_ELSES_ENDED
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            logger.warning("the token service gave no sign-in resource (%s)", _failure_kind(error))
            if foreign:
                raise SignInRequired(recipient.object_id, SOMEONE_ELSES_KEPT) from None
            raise SignInUnavailable() from None
        resource = answer.sign_in_resource
        if resource is None or not resource.sign_in_link:
            logger.warning("the token service answered without a sign-in link")
            raise SignInUnavailable()
        if self._settings.typed_codes:
            self._code_wanted[recipient.object_id.lower()] = self._clock.now() + SIGN_IN_WAIT
        card = oauth_attachment_content(
            connection_name=self._settings.connection_name,
            sign_in_link=resource.sign_in_link,
            token_exchange_resource=_camel(resource.token_exchange_resource),
            token_post_resource=_camel(resource.token_post_resource),
        )
        return card, ended

    def _card_activities(self, card: dict[str, Any]) -> list[Activity]:
        activities = [
            Activity(type=ActivityTypes.message, attachments=[Attachment(content_type=OAUTH_CARD, content=card)])
        ]
        if self._settings.typed_codes:  # a client without the OAuthCard's sign-in can still open the page
            link = card["buttons"][0]["value"]
            activities.append(card_message(self._presentation.decorate(magic_code_card(link))))
        return activities

    # --- the invokes ------------------------------------------------------------------------------------------------

    async def on_invoke(self, turn: Turn) -> None:
        """`signin/tokenExchange`, `signin/verifyState`, `signin/failure` (route: is_sign_in_invoke)."""
        activity = turn.context.activity
        value = activity.value if isinstance(activity.value, dict) else {}
        if activity.name == TOKEN_EXCHANGE:
            status, body, signed_in = await self._on_token_exchange(turn, value)
            await _answer(turn.context, status, body)
            if signed_in is not None:
                await self._resume(turn, announce=signed_in)
            return
        await _answer(turn.context, 200, None)
        refusal = self._refusal(turn)
        if refusal is not None:
            await turn.reply_here(ONLY_PERSONAL if refusal == "not personal" else refusal)
            return
        if activity.name == VERIFY_STATE:
            await self._on_verify_state(turn, value)
        else:
            await self._on_failure(turn, value)

    async def _on_token_exchange(self, turn: Turn, value: dict[str, Any]) -> tuple[int, dict[str, Any], bool | None]:
        """(status, body, None | announce): a sign-in resumes what waited; `announce` False for a duplicate."""
        exchange_id = _short_text(value.get("id"), MAX_ID_LENGTH)
        connection = value.get("connectionName")
        sso_token = value.get("token")

        def answer(status: int, detail: str) -> tuple[int, dict[str, Any], None]:
            body = {"id": exchange_id, "connectionName": self._settings.connection_name, "failureDetail": detail}
            return status, body, None

        refusal = self._refusal(turn)
        if refusal is not None:
            logger.warning("refused a token exchange: %s", refusal)
            return answer(400, ONLY_PERSONAL if refusal == "not personal" else refusal)
        if connection != self._settings.connection_name:
            logger.warning("refused a token exchange for an OAuth connection tapbot does not use")
            return answer(400, "tapbot uses another OAuth connection.")
        if not exchange_id or not isinstance(sso_token, str) or not sso_token:
            return answer(400, "The exchange needs an id and a token.")
        if not _token_is_for(sso_token, turn.caller):
            logger.warning("refused a token exchange whose token is not the sender's (%s)", turn.caller.object_id)
            return answer(400, "That sign-in token is not yours.")
        key = f"signin|{turn.caller.object_id}|{exchange_id}"
        ok: bool
        duplicate = False
        running = self._exchanges.get(key)
        if running is not None:  # Teams' other client endpoint, while the first exchange is running here
            ok, duplicate = await asyncio.shield(running), True
        elif not await self._processed.first_delivery(key, self._clock.now(), EXCHANGE_MEMORY):
            ok, duplicate = await self._token_now(turn), True  # exchanged elsewhere (another replica): no second one
        else:
            future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self._exchanges[key] = future
            ok = False
            try:
                ok = await self._exchange(turn, sso_token)
            finally:
                future.set_result(ok)
                del self._exchanges[key]
        if not ok:
            return answer(412, "tapbot could not sign you in silently: use the Sign in button.")
        body = {"id": exchange_id, "connectionName": self._settings.connection_name}
        return 200, body, not duplicate

    async def _exchange(self, turn: Turn, sso_token: str) -> bool:
        facts = turn.facts
        try:
            async with self._client(turn.context) as client:
                response = await client.exchange_token(
                    facts.caller_channel_id,
                    self._settings.connection_name,
                    TEAMS_CHANNEL,
                    TokenExchangeRequest(token=sso_token),
                )
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            logger.info("token exchange for %s failed (%s)", facts.caller.object_id, _failure_kind(error))
            return False
        if not response or not response.token:
            logger.info("token exchange for %s gave no token", facts.caller.object_id)
            return False
        if not await self._remember(turn.caller, facts.caller_channel_id, response):
            return False
        logger.info("%s signed in (token exchange)", facts.caller.object_id)
        return True

    async def _token_now(self, turn: Turn) -> bool:
        """Whether the token service holds a token for the caller now (kept when it does); no exchange."""
        response = await self._get_token(turn, code=None)
        if response is None:
            return False
        return await self._remember(turn.caller, turn.facts.caller_channel_id, response)

    async def _on_verify_state(self, turn: Turn, value: dict[str, Any]) -> None:
        code = _short_text(value.get("state"), MAX_STATE_LENGTH)
        response = await self._get_token(turn, code=code) if code else None
        if response is None:
            await turn.reply_here(VERIFY_FAILED)
            return
        if not await self._remember(turn.caller, turn.facts.caller_channel_id, response):
            await self._someone_elses_sign_in(turn)
            return
        logger.info("%s signed in (verify state)", turn.caller.object_id)
        await self._resume(turn, announce=True)

    async def _on_failure(self, turn: Turn, value: dict[str, Any]) -> None:
        code = value.get("code")
        code = code if isinstance(code, str) and _FAILURE_CODE.fullmatch(code) else "unknown"
        logger.warning("Teams could not sign %s in (failure code %s)", turn.caller.object_id, code)
        await turn.reply_here(
            f"Teams could not sign you in ({code}). Press Sign in on the card to sign in with the page instead; if "
            "that fails too, tell IT: tapbot's single sign-on may not be set up right."
        )

    async def _someone_elses_sign_in(self, turn: Turn) -> None:
        """A sign-in finished with someone else's token (they signed in at the caller's link): nothing runs; the
        session is ended and a new card sent (`_sign_in_card`). What waited keeps waiting for the caller's own."""
        try:
            await self.ask_in_turn(turn, kind=None, ref=None, what="anything that waited for your sign-in")
        except TapError as refusal:  # SignInRequired (could not be ended), SignInUnavailable
            await turn.reply_here(refusal.user_message)

    def _refusal(self, turn: Turn) -> str | None:
        """Why this sign-in invoke is not acted on (a sentence), or None. Identity only from the activity."""
        caller = turn.caller
        if caller.tenant_id.lower() not in self._settings.allowed_tenant_ids:
            return "This bot serves only its own organisation's tenant."
        if not caller.object_id or not turn.facts.caller_channel_id:
            return "I can't tell who you are from this message."
        if not turn.is_personal:
            return "not personal"
        return None

    # --- the sandbox's typed code -------------------------------------------------------------------------------

    async def on_code(self, turn: Turn) -> bool:
        """A message that is exactly a 6-digit code, in the 1:1 chat of someone sent a sign-in card in the last 10
        minutes (sandbox only): GetToken with it, then what waited runs. True when the message was such a code."""
        if not self._settings.typed_codes or not turn.is_personal or not MAGIC_CODE.fullmatch(turn.facts.text):
            return False
        user = turn.caller.object_id.lower()
        until = self._code_wanted.get(user)
        if until is None or self._clock.now() >= until or self._refusal(turn) is not None:
            return False
        response = await self._get_token(turn, code=turn.facts.text)
        if response is None:
            await turn.reply_here(CODE_FAILED)
            return True
        if not await self._remember(turn.caller, turn.facts.caller_channel_id, response):
            await self._someone_elses_sign_in(turn)
            return True
        self._code_wanted.pop(user, None)
        logger.info("%s signed in (typed code)", user)
        await self._resume(turn, announce=True)
        return True

    # --- resuming -----------------------------------------------------------------------------------------------

    async def _resume(self, turn: Turn, *, announce: bool) -> None:
        """Runs what waited for the caller's sign-in, each wait once, oldest first."""
        waits = await self._waits.take_sign_in_waits(turn.caller.object_id, self._clock.now())
        if not waits:
            if announce:
                await turn.reply_here(SIGNED_IN_NOTHING_WAITING)
            return
        for wait in waits:
            handler = self.resumes.handler_for(wait.kind)
            if handler is None:
                logger.error("no handler resumes sign-in waits of kind %s", wait.kind.value)
                await turn.reply_here(RUN_AGAIN.replace("Once you have signed in", "You're signed in"))
                continue
            try:
                await handler(turn, wait)
            except SignInRequired as needed:
                try:
                    await turn.ask_sign_in(needed)
                except SignInRequired:
                    await turn.reply_here(needed.user_message)
            except TapError as refusal:
                await turn.reply_here(refusal.user_message)
            except Exception as error:
                reference = uuid.uuid4().hex[:8]
                logger.error(
                    "resuming a %s wait failed (reference %s): %s",
                    wait.kind.value,
                    reference,
                    type(error).__name__,
                    exc_info=error,
                )
                await turn.reply_here(RESUME_FAILED.format(reference=reference))

    async def _resume_command(self, turn: Turn, wait: SignInWait) -> None:
        if self._runner is None:
            raise LookupError("no command runner for sign-in waits")
        text, method_id = _command_of_ref(wait.ref)
        try:
            command = parse_command(
                text,
                now=self._clock.now(),
                tz=turn.timezone,
                default_start_hour=turn.presentation.default_start_hour,
            )
            if method_id is not None:
                command = _bound_to_pass(command, method_id)
        except CommandError:
            await turn.reply_here(f"You're signed in. I couldn't read “{text}” again: type it once more.")
            return
        await turn.reply_here(f"You're signed in. Running “{text}” now.")
        await self._runner.run(turn, command)

    # --- /tap signout -------------------------------------------------------------------------------------------

    async def on_sign_out(self, turn: Turn, _command: SignOutCommand) -> None:
        """Ends the caller's session at the token service and forgets their token here."""
        caller = turn.caller
        self._tokens.forget(caller.object_id)
        self._code_wanted.pop(caller.object_id.lower(), None)
        try:
            async with self._client(turn.context) as client:
                await client.sign_out_user(turn.facts.caller_channel_id, self._settings.connection_name, TEAMS_CHANNEL)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            logger.warning("sign-out at the token service failed for %s (%s)", caller.object_id, _failure_kind(error))
            await self._waits.forget_sign_in_user(caller.object_id)
            await turn.reply_privately(SIGN_OUT_PARTLY)
            return
        # After the token service's sign-out (else another replica could get a token again and save the row anew):
        # every replica's DelegatedTokens finds the row gone and drops the token it has cached.
        await self._waits.forget_sign_in_user(caller.object_id)
        logger.info("%s signed out", caller.object_id)
        await turn.reply_privately(SIGNED_OUT)

    # --- the token service -------------------------------------------------------------------------------------

    def _client(self, context: TurnContext | None) -> _TokenClient:
        identity = ClaimsIdentity(
            {
                AuthenticationConstants.AUDIENCE_CLAIM: self._settings.app_id,
                AuthenticationConstants.APP_ID_CLAIM: self._settings.app_id,
            },
            authentication_type="Bearer",
        )
        return _TokenClient(self._clients, context, identity)

    async def _get_token(self, turn: Turn, *, code: str | None) -> TokenResponse | None:
        try:
            async with self._client(turn.context) as client:
                response = await client.get_user_token(
                    turn.facts.caller_channel_id, self._settings.connection_name, TEAMS_CHANNEL, magic_code=code
                )
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            logger.info("GetToken for %s failed (%s)", turn.caller.object_id, _failure_kind(error))
            return None
        return response if response and response.token else None

    async def _remember(self, caller: Caller, channel_user_id: str, response: TokenResponse) -> bool:
        """Hands the token to `DelegatedTokens`; False when it is not the caller's own (someone else signed in at a
        link of theirs): `DelegatedTokens` does not keep such a token, and nothing may run as if they had signed in."""
        token = response.token
        assert token  # callers checked
        return await self._tokens.remember(caller, channel_user_id, TEAMS_CHANNEL, token, response.expiration)


class _TokenClient:
    """A token service client for one use (its HTTP session closes after)."""

    def __init__(self, clients: UserTokenClients, context: TurnContext | None, identity: ClaimsIdentity) -> None:
        self._clients = clients
        self._context = context
        self._identity = identity
        self._client: UserTokenClient | None = None

    async def __aenter__(self) -> UserTokenClient:
        self._client = await self._clients.user_token_client(self._context, self._identity)
        return self._client

    async def __aexit__(self, *_exc: object) -> None:
        if self._client is not None:
            await self._client.close()


# --- when delegated writes are off ---------------------------------------------------------------------------------


async def sign_in_off(context: TurnContext, _state: TurnState) -> None:
    """A sign-in invoke while passes are written with the bot's own permission: nothing to exchange."""
    value = context.activity.value if isinstance(context.activity.value, dict) else {}
    body = {"id": _short_text(value.get("id"), MAX_ID_LENGTH), "failureDetail": NOT_DELEGATED}
    await _answer(context, 400, body)


async def sign_out_off(turn: Turn, _command: SignOutCommand) -> None:
    await turn.reply_privately(NOT_DELEGATED)


# --- helpers ---------------------------------------------------------------------------------------------------------


async def _answer(context: TurnContext, status: int, body: dict[str, Any] | None) -> None:
    await context.send_activity(
        Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=status, body=body))
    )


def _command_ref(command: Command) -> str | None:
    """What a wait of kind `command` keeps: the canonical text, plus the pass a Replace button was shown (the resumed
    replace then replaces only that pass, as the button would have; the domain asks again when another is there)."""
    try:
        text = command_text(command)
    except (TypeError, ValueError):  # a command with no text form cannot wait; the person runs it again
        return None
    if isinstance(command, IssueCommand) and command.request.replace_method_id is not None:
        return f"{text}{_BOUND_PASS}{command.request.replace_method_id}"
    return text


def _command_of_ref(ref: str) -> tuple[str, str | None]:
    """(command text, the method id of the pass a Replace button was shown, if any): `_command_ref` undone."""
    text, bound, method_id = ref.partition(_BOUND_PASS)
    return (text, method_id) if bound else (text, None)


def _bound_to_pass(command: Command, method_id: str) -> Command:
    """The resumed command replaces only the pass the button was shown; anything else is not what was kept."""
    if not isinstance(command, IssueCommand) or not command.request.replace or not _METHOD_ID.fullmatch(method_id):
        raise CommandError("That is not a replace of one pass.", "/tap issue user@contoso.com replace")
    return IssueCommand(dataclass_replace(command.request, replace_method_id=method_id))


def _state_activity(recipient: Recipient, chat: PrivateChat) -> Activity:
    """The activity the sign-in state names (its conversation reference): the person's 1:1 chat with the bot."""
    return Activity.model_validate(
        {
            "type": ActivityTypes.message,
            "channelId": TEAMS_CHANNEL,
            "serviceUrl": chat.service_url,
            "from": {"id": recipient.channel_account_id, "aadObjectId": recipient.object_id},
            "recipient": {"id": recipient.bot_id},
            "conversation": {
                "id": chat.conversation_id,
                "conversationType": "personal",
                "tenantId": recipient.tenant_id,
            },
        }
    )


def _caller_of(recipient: Recipient) -> Caller:
    return Caller(recipient.object_id, recipient.tenant_id, recipient.name, recipient)


def _token_is_for(sso_token: str, caller: Caller) -> bool:
    """The Teams token offered for exchange is the sender's own: its `oid` and `tid` are the activity's. (The token
    service and Entra check its signature and audience; this only stops one person's token being offered as
    another's.) Read without verifying: it is a token for this bot's own API, not for Graph."""
    try:
        claims = jwt.decode(sso_token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return False
    return (
        isinstance(claims, dict)
        and object_id_of(claims.get("oid")) == caller.object_id.lower()
        and str(claims.get("tid", "")).lower() == caller.tenant_id.lower()
    )


def _camel(resource: Any) -> dict[str, Any] | None:
    if resource is None:
        return None
    dumped = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped or None


def _short_text(value: object, limit: int) -> str:
    return value if isinstance(value, str) and 0 < len(value) <= limit and value.isprintable() else ""


def _failure_kind(error: BaseException) -> str:
    """What went wrong, without the token service's own words (they may repeat what was sent)."""
    status = getattr(error, "status", None)
    return f"HTTP {status}" if isinstance(status, int) else type(error).__name__
