"""POST /api/verifiedid/callback: where Microsoft Entra Verified ID's Request Service reports on a presentation.

The service authenticates with the `api-key` header the bot put in the request's callback.headers: a fresh secret
per request, compared in constant time with its stored hash (bot/domain/verified_id_verifier.py decides everything
else). A refused callback gets 400, 401 or 409 with a sentence; an accepted one 200 with an empty body. Neither the
api-key nor the body is ever logged.

After the answer is decided, the technician's card follows: `VerificationOutcomes` (the verification flow) updates it
in place, and issues and delivers the pass once the person is verified.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, cast

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.domain.verification import Verification
from bot.domain.verified_id_verifier import CallbackEffect, VerifiedIdVerifier

logger = logging.getLogger(__name__)

CALLBACK_PATH = "/api/verifiedid/callback"
# A presentation carries the employee photo (≤ 1 MB, URL-encoded base64); the service's callbacks are ≤ 10 MB.
MAX_CALLBACK_BYTES = 11 * 1024 * 1024
MAX_API_KEY_LENGTH = 200


class VerificationOutcomes(Protocol):
    """The edge that shows a verification to the technician (the verification flow)."""

    async def settled(self, verification: Verification) -> None:
        """After a change: pending (scanned) updates the tracking card in place; confirmed issues the pass (every rule
        checked again, the verification consumed) and delivers it privately; failed or expired updates the card and
        tells the technician."""
        ...


@dataclass(frozen=True)
class VerifiedIdEndpoint:
    verifier: VerifiedIdVerifier
    outcomes: VerificationOutcomes

    async def expire_due(self) -> int:
        """Housekeeping: requests nobody answered before their expiry (the service sends nothing then)."""
        expired = await self.verifier.expire_due()
        for verification in expired:
            await self.outcomes.settled(verification)
        return len(expired)


VERIFIED_ID_ENDPOINT = web.AppKey("verified_id_endpoint", VerifiedIdEndpoint)


def add_verified_id_route(app: web.Application, endpoint: VerifiedIdEndpoint) -> None:
    app[VERIFIED_ID_ENDPOINT] = endpoint
    app.router.add_post(CALLBACK_PATH, verified_id_callback)


async def verified_id_callback(request: web.Request) -> web.StreamResponse:
    endpoint = request.app[VERIFIED_ID_ENDPOINT]
    api_key = request.headers.get("api-key")
    if not api_key or len(api_key) > MAX_API_KEY_LENGTH:
        logger.warning("verified id: callback without a usable api-key refused")
        return _answer(401, "Missing or wrong api-key.")
    if request.content_length is not None and request.content_length > MAX_CALLBACK_BYTES:
        return _answer(413, "The callback is too large.")
    try:
        raw = await request.clone(client_max_size=MAX_CALLBACK_BYTES).read()
    except web.HTTPRequestEntityTooLarge:
        return _answer(413, "The callback is too large.")
    try:
        body: object = json.loads(raw)
    except (ValueError, RecursionError):
        return _answer(400, "The body is not JSON.")
    if not isinstance(body, dict):
        return _answer(400, "The body must be a JSON object.")
    answer = await endpoint.verifier.on_callback(api_key, cast(Mapping[str, object], body))
    logger.info("verified id: callback answered %s: %s", answer.status, answer.message)
    if answer.verification is not None and answer.effect is not CallbackEffect.NONE:
        try:
            await endpoint.outcomes.settled(answer.verification)
        except Exception:  # the verification is recorded; the card catches up at the next housekeeping round
            logger.exception("verified id: showing the outcome of verification %s failed", answer.verification.id)
    return _answer(answer.status, answer.message)


def _answer(status: int, message: str) -> web.Response:
    if status == 200:
        return web.Response(status=200)
    return web.json_response({"error": message}, status=status)


class LocalAddress:
    """The bot's own address, learnt from the socket the first request arrived on: the sandbox's callback target
    when no public callback address is configured (the tests and `./dev run` bind a port only once started)."""

    def __init__(self) -> None:
        self._base: str | None = None

    def callback_url(self) -> str | None:
        return self._base + CALLBACK_PATH if self._base else None

    @web.middleware
    async def learn(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self._base is None and request.transport is not None:
            sockname = request.transport.get_extra_info("sockname")
            if isinstance(sockname, tuple) and len(sockname) >= 2:
                host, port = str(sockname[0]), int(sockname[1])
                self._base = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        return await handler(request)
