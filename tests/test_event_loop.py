"""`python app.py` serves on uvloop's event loop (requirements.txt pins it except on Windows), and on asyncio's own
where uvloop is not installed."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
import uvloop

import app


def test_app_py_serves_on_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    served: dict[str, Any] = {}

    def run_app(started: Any, **options: Any) -> None:
        started.close()  # the app factory's coroutine: not run here
        served.update(options)

    monkeypatch.setattr(app.web, "run_app", run_app)
    monkeypatch.setattr(app, "configure_logging", lambda *_: None)
    for name in [name for name in app.os.environ if name.startswith("TAPBOT_")]:
        monkeypatch.delenv(name)
    assert app.main([]) == 0
    loop = served["loop"]
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_without_uvloop_asyncio_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as on Windows: `import uvloop` fails
    loop = app.event_loop()
    try:
        assert isinstance(loop, asyncio.AbstractEventLoop) and not isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
