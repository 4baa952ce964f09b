"""Log lines: JSON objects with a correlation id and extra fields, or text; the format follows the settings."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot.logging_setup import LogFormat, build_handler, correlated, correlation_id, new_correlation_id
from bot.settings import Settings, SettingsError

APP = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID"


def emit(log_format: LogFormat, build: object) -> str:
    stream = io.StringIO()
    logger = logging.getLogger("tests.logging_setup")
    handler = build_handler(log_format, stream)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        assert callable(build)
        build(logger)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    return stream.getvalue()


def test_json_lines_carry_time_level_logger_message_correlation_and_extras() -> None:
    def log(logger: logging.Logger) -> None:
        with correlated("activity-7"):
            logger.info("Graph refused to %s", "read a group", extra={"graph_request_id": "req-1", "graph_status": 403})
        logger.warning("outside a turn")

    first, second = (json.loads(line) for line in emit(LogFormat.JSON, log).splitlines())
    assert first["message"] == "Graph refused to read a group"
    assert first["level"] == "INFO" and first["logger"] == "tests.logging_setup"
    assert first["correlation_id"] == "activity-7"
    assert first["graph_request_id"] == "req-1" and first["graph_status"] == 403
    assert first["time"].endswith("Z")
    assert second["correlation_id"] is None


def test_json_exceptions_stay_on_one_line() -> None:
    def log(logger: logging.Logger) -> None:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("failed")

    output = emit(LogFormat.JSON, log)
    assert len(output.splitlines()) == 1
    assert "RuntimeError: boom" in json.loads(output)["exception"]


def test_text_lines_show_the_correlation_id_and_extras() -> None:
    def log(logger: logging.Logger) -> None:
        with correlated("abc"):
            logger.info("created", extra={"graph_request_id": "req-2"})

    line = emit(LogFormat.TEXT, log).strip()
    assert " INFO tests.logging_setup [abc]: created graph_request_id=req-2" in line


def test_correlation_ids_follow_the_context_and_fall_back_to_a_random_id() -> None:
    assert correlation_id() is None
    with correlated("outer"):
        assert correlation_id() == "outer"
    assert correlation_id() is None
    assert new_correlation_id("f:1234") == "f:1234"
    generated = {new_correlation_id(None), new_correlation_id(""), new_correlation_id("x" * 500)}
    assert len(generated) == 3 and all(len(value) == 32 for value in generated)


def test_log_format_defaults_to_json_with_a_registration_and_text_in_the_sandbox() -> None:
    assert Settings.from_env({}).log_format is LogFormat.TEXT
    registered = Settings.from_env({APP: "bot-app-id", "TAPBOT_HOST": "127.0.0.1"})
    assert registered.log_format is LogFormat.JSON
    assert Settings.from_env({"TAPBOT_LOG_FORMAT": "JSON"}).log_format is LogFormat.JSON
    with pytest.raises(SettingsError, match="TAPBOT_LOG_FORMAT=xml"):
        Settings.from_env({"TAPBOT_LOG_FORMAT": "xml"})
