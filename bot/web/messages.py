"""POST /api/messages: the checks an activity passes before the Agents SDK runs the bot's handlers on it.

In order: the token's issuer is the channel's (before any signing key is fetched for it); the SDK checks the
token's signature, lifetime and audience; the body is a JSON object of bounded depth and string sizes that the
SDK's own model takes; the token's claims match the activity (bot/teams/trust.py); the service URL is an allowed
connector host. Anything else is refused with 400 or 401 and a sentence, never a traceback.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from microsoft_agents.activity import Activity, DeliveryModes
from microsoft_agents.hosting.aiohttp import jwt_authorization_decorator
from microsoft_agents.hosting.core.http import HttpResponse

from bot.components import COMPONENTS
from bot.logging_setup import bind_correlation_id, new_correlation_id
from bot.teams.activity import clean_text
from bot.teams.trust import token_refusal, unverified_issuer
from bot.telemetry import ACCEPTED_ACTIVITY

logger = logging.getLogger(__name__)
_SDK_ACTIVITY_LOGGER = logging.getLogger("microsoft_agents.activity.activity")  # muted while a body is validated

MAX_JSON_DEPTH = 32
MAX_STRING_LENGTH = 32 * 1024
# A UTF-16 surrogate, raw or as a JSON escape: only a pair of them (an emoji written as `\ud83d\ude00`) is text.
_MAYBE_SURROGATE = re.compile(r"[\ud800-\udfff]|\\u[dD][89abcdefABCDEF]")
TURN_SUMMARY = "tapbot_turn_summary"


async def messages(request: web.Request) -> web.StreamResponse:
    components = request.app[COMPONENTS]
    # A token that the channel did not issue is refused before any signing key is fetched for it.
    issuer = unverified_issuer(request.headers.get("Authorization"))
    if not components.settings.anonymous and issuer not in components.runtime.channel_issuers:
        return _refused(401, "Invalid token or authentication failed.")
    return await _authenticated(request)


@jwt_authorization_decorator
async def _authenticated(request: web.Request) -> web.StreamResponse:
    """Runs after the SDK checked the token's signature, lifetime and audience (or found anonymous mode)."""
    components = request.app[COMPONENTS]
    settings = components.settings
    read = await _read_activity(request)
    if isinstance(read, web.Response):
        return read
    body = read.body
    bind_correlation_id(new_correlation_id(body.get("id")))
    request[TURN_SUMMARY] = turn_summary(body)
    if not settings.anonymous:
        identity = request.get("claims_identity")
        claims = getattr(identity, "claims", None)
        refusal = await token_refusal(
            claims if isinstance(claims, dict) else {},
            getattr(identity, "security_token", None),
            body,
            app_id=settings.bot_client_id or "",
            issuers=components.runtime.channel_issuers,
            endorsements=components.runtime.key_endorsements,
        )
        if refusal is not None:
            logger.warning("refused an activity: %s", refusal)
            return _refused(401, "Invalid token or authentication failed.")
    if not components.runtime.connector_hosts.allows(body.get("serviceUrl")):
        logger.warning("refused an activity whose service URL is not an allowed connector host")
        return _refused(401, "The service URL is not an allowed Teams connector address.")
    request[ACCEPTED_ACTIVITY] = body  # read by telemetry's turn attributes, not parsed again there
    runtime = components.runtime
    # What the SDK's start_agent_process does (CloudAdapter.process), with the body read once: see _ReadActivity.
    answer = await runtime.adapter.process_request(_ReadActivity(request, read), runtime.application)
    return _response(answer)


class _ReadActivity:
    """The request as the SDK's adapter reads it (its HttpRequestProtocol, as its AiohttpRequestAdapter gives it),
    except that its read of the body gets the Activity validated here from the very same text, instead of parsing
    and validating the body a second time."""

    def __init__(self, request: web.Request, read: _Read) -> None:
        self._request = request
        self._read = read

    @property
    def method(self) -> str:
        return self._request.method

    @property
    def headers(self) -> Mapping[str, str]:
        return self._request.headers

    async def json(self) -> Any:
        # _read_activity made sure that the text the SDK would read (aiohttp's decoding) is the one checked.
        return self._read.activity  # the SDK's Activity.model_validate takes a model instance as it is

    def get_claims_identity(self) -> Any:
        return self._request.get("claims_identity")

    def get_path_param(self, name: str) -> str:
        return self._request.match_info[name]


def _response(answer: HttpResponse) -> web.Response:
    """The SDK's answer as aiohttp's (what its CloudAdapter.process returns)."""
    if answer.body is not None:
        return web.json_response(data=answer.body, status=answer.status_code, headers=answer.headers)
    return web.Response(status=answer.status_code, headers=answer.headers, content_type=answer.content_type)


class _Read:
    """A body that passed the checks: the JSON object parsed from it, the SDK's model of it."""

    def __init__(self, body: dict[str, Any], activity: Activity) -> None:
        self.body = body
        self.activity = activity


async def _read_activity(request: web.Request) -> _Read | web.Response:
    """The body as an activity, or a 400 saying why not: never an exception on hostile JSON."""
    raw = await request.read()  # within client_max_size; aiohttp keeps the bytes for the SDK's own read
    try:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")  # what json.loads(raw) decodes
        body = json.loads(text)
    except (ValueError, RecursionError):
        return _refused(400, "The body is not JSON.")
    # aiohttp (and the SDK's own read through it) decodes the body in the charset its Content-Type declares: a body
    # that reads otherwise there would be one document checked here and another acted on.
    try:
        declared = await request.text()
    except (LookupError, ValueError, TypeError):  # an unknown charset, bytes it cannot decode
        declared = None
    if declared != text:
        return _refused(400, "The body does not read the same in the charset it declares: send JSON in UTF-8.")
    if not isinstance(body, dict):
        return _refused(400, "The body must be a JSON object (an activity).")
    problem = _shape_problem(body)
    if problem:
        return _refused(400, problem)
    if _MAYBE_SURROGATE.search(text) and not _all_text(body):
        # Teams never sends one; a lone surrogate cannot be encoded, so a command naming one would fail half-way
        # (in a Graph URL, a log line) instead of being answered.
        return _refused(400, "The activity holds a string that is not valid Unicode text.")
    activity = _as_activity(body)
    if activity is None:
        return _refused(400, "The activity has fields of the wrong type.")
    for name in ("type", "serviceUrl", "channelId"):
        if not isinstance(body.get(name), str):
            return _refused(400, f"The activity has no {name}.")
    if activity.delivery_mode not in (None, DeliveryModes.normal):
        # Teams asks for none. The SDK would not send the turn's replies, a pass card too, through the connector:
        # expectReplies returns them in the HTTP answer to whoever posted, stream makes no connector client at all
        # (a pass would be created and at once revoked, unseen), the others are not Teams'. Deny by default.
        return _refused(400, "The bot answers through the Teams connector only, not in the HTTP answer.")
    return _Read(body, activity)


def _shape_problem(body: dict[str, Any]) -> str | None:
    """Depth and string sizes, checked without recursion (the SDK and the handlers walk the body again)."""
    stack: list[tuple[object, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"The activity is nested deeper than {MAX_JSON_DEPTH} levels."
        if isinstance(value, dict):
            for key, item in value.items():
                if len(key) > MAX_STRING_LENGTH:
                    return "The activity holds a string that is too long."
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend([(item, depth + 1) for item in value])
        elif isinstance(value, str) and len(value) > MAX_STRING_LENGTH:
            return "The activity holds a string that is too long."
    return None


def _all_text(body: dict[str, Any]) -> bool:
    """Whether every key and string in the body can be written as UTF-8 (no lone surrogate)."""
    stack: list[object] = [body]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


def _as_activity(body: dict[str, Any]) -> Activity | None:
    """The SDK's own model of the body, or None when it does not take it. Its validator logs every refusal as an
    error with a traceback; a client's malformed body is not the bot's error, so that log is muted here (validation
    does not await, so no other turn's log falls in between)."""
    sdk_logger = _SDK_ACTIVITY_LOGGER
    was_disabled = sdk_logger.disabled
    sdk_logger.disabled = True
    try:
        return Activity.model_validate(body)
    except Exception:  # pydantic's errors, and the plain Exception the model raises itself
        return None
    finally:
        sdk_logger.disabled = was_disabled


def _refused(status: int, error: str) -> web.Response:
    return web.json_response({"error": error}, status=status)


def turn_summary(body: dict[str, Any]) -> str:
    """`Adele Vance in personal chat: tap issue …` for the console: who, where, and at most the first two words."""
    sender = body.get("from")
    name = sender.get("name") if isinstance(sender, dict) else None
    conversation = body.get("conversation")
    kind = conversation.get("conversationType") if isinstance(conversation, dict) else None
    where = {"channel": "a channel", "groupChat": "a group chat"}.get(
        kind if isinstance(kind, str) else "", "personal chat"
    )
    kind_of_activity = body.get("type")
    if kind_of_activity == "message":
        words = clean_text(body.get("text") if isinstance(body.get("text"), str) else "").lstrip("/").split()
        what = " ".join(words[:2]) + (" …" if len(words) > 2 else "")
        if len(words) == 1 and words[0].isdigit():  # a sign-in code typed in the sandbox (bot/teams/sign_in.py)
            what = "(a number)"
        if not words:
            what = "sent a file" if body.get("attachments") else "(empty message)"
    elif kind_of_activity == "invoke":
        what = f"invoke {body.get('name')}"
    else:
        what = str(kind_of_activity)
    return f"{_printable(name) or 'someone'} in {where}: {_printable(what)}"


def _printable(value: object, limit: int = 80) -> str:
    text = value if isinstance(value, str) else ""
    head = text[:limit]
    if not head.isprintable():  # what names and commands nearly always are: no character to replace
        head = "".join(char if char.isprintable() else " " for char in head)
    return head.strip() + ("…" if len(text) > limit else "")
