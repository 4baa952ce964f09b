"""The middleware every request passes: a correlation id for its log lines, and one line per turn."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.logging_setup import CONSOLE_LINE, TURN_LOGGER, correlated, correlation_id, new_correlation_id
from bot.web.messages import TURN_SUMMARY

logger = logging.getLogger(__name__)
turn_logger = logging.getLogger(TURN_LOGGER)  # one line per request to /api/messages


@web.middleware
async def correlation_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Gives every request a correlation id that every log line carries: the activity's id for /api/messages, once
    the request is authenticated and its body parsed (the handler rebinds it), else a fresh one. The body is not
    read here: nothing of an unauthenticated request is parsed."""
    with correlated(new_correlation_id(None)):
        started = time.monotonic()
        try:
            response = await handler(request)
        except web.HTTPException as answer:  # an answer given by raising (413, 405, …)
            _log_request(request, answer.status, started)
            raise
        except Exception:
            logger.exception("%s %s failed", request.method, request.path)  # here the turn's id is still known
            raise
        _log_request(request, response.status, started)
        response.headers["X-Correlation-Id"] = correlation_id() or ""
        return response


def _log_request(request: web.Request, status: int, started: float) -> None:
    if request.path == "/api/messages":
        duration_ms = round((time.monotonic() - started) * 1000)
        summary = request.get(TURN_SUMMARY) or f"{request.method} {request.path}"
        turn_logger.info(
            "handled %s %s: %s",
            request.method,
            request.path,
            status,
            extra={
                "http_status": status,
                "duration_ms": duration_ms,
                CONSOLE_LINE: f"{summary} → {status} ({duration_ms} ms)",
            },
        )
