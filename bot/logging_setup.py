"""Logging: one JSON object per line in production, readable text in the sandbox, and a correlation id per turn.

Every record carries `correlation_id`: the id of the incoming activity being handled (set by the HTTP middleware in
bot/server.py), so all lines of one turn, its Graph calls included, can be found together. Extra fields passed with
`logger.info(..., extra={"graph_request_id": ...})` become JSON fields (in text mode: `key=value` at the end).

Nothing here filters secrets: pass values never reach a logger in the first place (they are wrapped in PassSecret,
whose repr is masked), and tests/http/test_security.py checks both formats after a run.
"""

from __future__ import annotations

import contextvars
import enum
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any

_CORRELATION_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("tapbot_correlation_id", default=None)

# Attributes every LogRecord has; anything else on a record came in through `extra=` and is a field of its own.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("name", logging.INFO, "path", 1, "message", None, None)).keys()
    | {"message", "asctime", "correlation_id", "taskName"}
)
MAX_FIELD_LENGTH = 2000
TURN_LOGGER = "tapbot.turn"  # bot/server.py: one line per request to /api/messages
# A record's readable one-liner for the text console (`extra={CONSOLE_LINE: …}`): who, where, what, the answer.
# JSON lines leave it out: production logs keep their plain message and fields, without people's names.
CONSOLE_LINE = "console_line"
# In the sandbox's text console these speak on every turn or dump settings at start (the SDK's connection
# settings at INFO, "App ID is not provided" at WARNING per turn, each reply at INFO, a second traceback of an
# error the bot's own turn-error handler already logs), or echo request headers (aiohttp.access).
_QUIET_IN_TEXT_MODE = {
    "microsoft_agents": logging.WARNING,
    "microsoft_agents.hosting.core.connector.client.user_token_client": logging.ERROR,
    "microsoft_agents.hosting.core.app.agent_application": logging.CRITICAL,
    "aiohttp.access": logging.WARNING,
    "alembic": logging.WARNING,
}
# Production (JSON) keeps the SDK's warnings and errors for the log collector, not its line per reply or connection
# dump, nor aiohttp's access line: the turn line (TURN_LOGGER) already records every request, with its correlation id.
_QUIET_IN_JSON_MODE = {
    "microsoft_agents": logging.WARNING,
    "aiohttp.access": logging.WARNING,
}


class LogFormat(enum.StrEnum):
    JSON = "json"
    TEXT = "text"


def correlation_id() -> str | None:
    """The correlation id of the turn being handled, if any."""
    return _CORRELATION_ID.get()


def new_correlation_id(activity_id: object = None) -> str:
    """The incoming activity's id when it has a usable one, else a fresh random id."""
    if isinstance(activity_id, str) and 0 < len(activity_id) <= 200 and activity_id.isprintable():
        return activity_id
    return uuid.uuid4().hex


def bind_correlation_id(value: str) -> None:
    """Replaces the correlation id inside a `correlated` block (which restores the outer one when it ends)."""
    _CORRELATION_ID.set(value)


@contextmanager
def correlated(value: str) -> Iterator[str]:
    """Sets the correlation id for the code inside (and the tasks it starts, which copy the context)."""
    token = _CORRELATION_ID.set(value)
    try:
        yield value
    finally:
        _CORRELATION_ID.reset(token)


class CorrelationFilter(logging.Filter):
    """Stamps every record with the current correlation id (None outside a turn)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = _CORRELATION_ID.get()
        return True


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD_ATTRIBUTES}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, correlation_id, then any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": getattr(record, "correlation_id", None) or _CORRELATION_ID.get(),
        }
        for key, value in extra_fields(record).items():
            if key != CONSOLE_LINE:
                document.setdefault(key, _plain(value))
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [correlation id]: message key=value …` for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        console = getattr(record, CONSOLE_LINE, None)
        if isinstance(console, str) and not record.exc_info:
            return f"{self.formatTime(record, '%H:%M:%S')} {console}"
        current = getattr(record, "correlation_id", None) or _CORRELATION_ID.get()
        correlation = f" [{current}]" if current else ""
        fields = "".join(f" {key}={_plain(value)}" for key, value in extra_fields(record).items())
        line = f"{self.formatTime(record)} {record.levelname} {record.name}{correlation}: {record.getMessage()}{fields}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value[:MAX_FIELD_LENGTH] if isinstance(value, str) else value
    return str(value)[:MAX_FIELD_LENGTH]


def build_handler(log_format: LogFormat, stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format is LogFormat.JSON else TextFormatter())
    handler.addFilter(CorrelationFilter())
    return handler


def configure_logging(level: str, log_format: LogFormat, stream: IO[str] | None = None) -> logging.Handler:
    """Replaces the root logger's handlers by one in the chosen format; returns it (tests remove it again)."""
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    handler = build_handler(log_format, stream)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request line (URLs with user names) at INFO; the Graph adapter logs its calls itself,
    # with the request ids, so httpx speaks up only when debugging.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    quiet = _QUIET_IN_TEXT_MODE if log_format is LogFormat.TEXT else _QUIET_IN_JSON_MODE
    for name in _QUIET_IN_TEXT_MODE.keys() | _QUIET_IN_JSON_MODE.keys():
        # DEBUG shows everything.
        logging.getLogger(name).setLevel(quiet.get(name, logging.NOTSET) if level != "DEBUG" else logging.NOTSET)
    return handler
