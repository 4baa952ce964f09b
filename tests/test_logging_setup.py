"""Log lines: JSON objects with a correlation id and extra fields, or text; the format follows the settings."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from bot.logging_setup import (
    CONSOLE_LINE,
    TURN_LOGGER,
    LogFormat,
    build_handler,
    configure_logging,
    correlated,
    correlation_id,
    new_correlation_id,
)
from bot.settings import PROJECT_DIR, Settings, SettingsError
from tests.harness.bot import ADELE, TENANT_ID
from tests.harness.connector import RecordingConnector
from tests.support.echo_bot import free_port

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


def test_text_console_mutes_the_sdks_per_turn_noise_and_json_keeps_its_warnings() -> None:
    noisy = {
        "microsoft_agents.hosting.core.authorization.connection_manager": logging.INFO,  # the connection dump
        "microsoft_agents.hosting.core.connector.client.connector_client": logging.INFO,  # "Replying to activity"
        "microsoft_agents.hosting.core.connector.client.user_token_client": logging.WARNING,  # "App ID is not …"
        "aiohttp.access": logging.INFO,
    }
    stream = io.StringIO()
    try:
        handler = configure_logging("INFO", LogFormat.TEXT, stream)
        assert not any(logging.getLogger(name).isEnabledFor(level) for name, level in noisy.items())
        assert logging.getLogger("microsoft_agents.hosting.core").isEnabledFor(logging.WARNING)
        logging.getLogger().removeHandler(handler)
        handler = configure_logging("INFO", LogFormat.JSON, stream)
        assert logging.getLogger("microsoft_agents.hosting.core.connector.client.user_token_client").isEnabledFor(
            logging.WARNING
        ), "production logs keep the SDK's warnings"
        # ... but not its line per reply or its connection dump, nor aiohttp's access line (the turn line has it).
        assert not logging.getLogger("microsoft_agents.hosting.core.connector.client.connector_client").isEnabledFor(
            logging.INFO
        )
        assert not logging.getLogger("aiohttp.access").isEnabledFor(logging.INFO)
        assert logging.getLogger(TURN_LOGGER).isEnabledFor(logging.INFO)
        assert logging.getLogger("alembic").isEnabledFor(logging.INFO), "a migration at start-up is worth a line"
        logging.getLogger().removeHandler(handler)
    finally:
        configure_logging("WARNING", LogFormat.JSON, io.StringIO())
        root = logging.getLogger()
        for existing in list(root.handlers):
            root.removeHandler(existing)
        root.setLevel(logging.WARNING)


def test_turn_lines_read_as_a_sentence_in_text_and_carry_fields_in_json() -> None:
    def log(logger: logging.Logger) -> None:
        with correlated("turn-1"):
            logging.getLogger(TURN_LOGGER).info(
                "handled POST /api/messages: %s",
                200,
                extra={
                    "http_status": 200,
                    "duration_ms": 85,
                    CONSOLE_LINE: "Adele Vance in personal chat: tap issue … → 200 (85 ms)",
                },
            )

    text_line = emit_from(TURN_LOGGER, LogFormat.TEXT, log).strip()
    assert re.fullmatch(r"\d\d:\d\d:\d\d Adele Vance in personal chat: tap issue … → 200 \(85 ms\)", text_line)
    document = json.loads(emit_from(TURN_LOGGER, LogFormat.JSON, log))
    assert document["http_status"] == 200 and document["correlation_id"] == "turn-1"
    assert document["message"] == "handled POST /api/messages: 200" and "Adele" not in json.dumps(document)


def emit_from(name: str, log_format: LogFormat, build: object) -> str:
    stream = io.StringIO()
    logger = logging.getLogger(name)
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
        logger.setLevel(logging.NOTSET)
    return stream.getvalue()


async def test_dev_run_console_shows_the_sandbox_address_and_one_line_per_turn(tmp_path: Path) -> None:
    """`python app.py` as `./dev run` starts it (sandbox, text logs): the banner names the built-in sandbox's
    addresses, and a turn prints one line, not SDK warnings or a dump of its connection settings."""
    connector = await RecordingConnector().start()
    port = free_port()
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("TAPBOT_", "CONNECTIONS__"))},
        "PORT": str(port),
        "TAPBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'tapbot.db'}",
        "PYTHONUNBUFFERED": "1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PROJECT_DIR / "app.py"),
        cwd=PROJECT_DIR,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    lines: list[str] = []

    async def read() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    reader = asyncio.create_task(read())
    try:
        async with aiohttp.ClientSession() as session:
            await until(lambda: any("sandbox control:" in line for line in lines), "the banner")
            await until_answers(session, f"http://127.0.0.1:{port}/healthz")
            control = re.search(r"sandbox control: (http://127\.0\.0\.1:\d+/_sandbox)/state", "\n".join(lines))
            graph = re.search(r"sandbox Graph: (http://127\.0\.0\.1:\d+/v1\.0)", "\n".join(lines))
            assert control and graph, lines
            async with session.get(f"{control.group(1)}/state") as state:
                assert state.status == 200, "the printed address is the running sandbox"
            assert any("sandbox file host: POST " + control.group(1) + "/files" in line for line in lines)
            wallet = control.group(1) + "/verifiedid/requests"
            assert any("sandbox Verified ID wallet: " + wallet in line for line in lines)
            async with session.get(wallet) as requests:
                assert requests.status == 200, "the printed wallet address answers"

            started = len(lines)
            activity = {
                "type": "message",
                "id": "console-1",
                "channelId": "msteams",
                "serviceUrl": connector.url,
                "from": {"id": "29:adele", "name": "Adele Vance", "aadObjectId": ADELE.object_id},
                "recipient": {"id": "28:tapbot", "name": "tapbot"},
                "conversation": {"id": "a:personal-adele", "conversationType": "personal"},
                "channelData": {"tenant": {"id": TENANT_ID}},
                "text": "/tap help",
            }
            async with session.post(f"http://127.0.0.1:{port}/api/messages", json=activity) as answer:
                assert answer.status in (200, 202)
            await until(lambda: len(connector.sent) >= 1, "the reply")
            await until(lambda: any("→" in line for line in lines[started:]), "the turn line")
            await asyncio.sleep(0.3)  # anything else the turn would print
    finally:
        process.terminate()
        await process.wait()
        await reader
        await connector.stop()
    turn = lines[started:]
    assert len(turn) == 1, turn
    assert re.fullmatch(r"\d\d:\d\d:\d\d Adele Vance in personal chat: tap help → 20[02] \(\d+ ms\)", turn[0]), turn
    everything = "\n".join(lines)
    for noise in ("Connections:", "App ID is not provided", "Replying to activity", "aiohttp.access", "alembic"):
        assert noise not in everything, noise


async def until(condition: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {what} within {seconds} s")


async def until_answers(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(600):
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} did not answer")
