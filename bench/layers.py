"""CPU of the bot's layers per command, without a profiler's distortion: timers around a few coroutines.

cProfile charges every Python call its own overhead, so code made of many small calls (the SDKs' plumbing) looks
several times costlier than it is, and its shares mislead. Here each layer's coroutine is wrapped so that the event
loop thread's CPU clock (`time.thread_time`) runs only while that coroutine (or what it awaits inline) runs: the time
it waits for Graph, SQLite's thread or another task is not counted. With one command at a time (bench.profile_issue),
a layer's total divided by the commands is what it costs per command, its inner layers included. Work in a task of
its own (`asyncio.gather`'s children) counts in the layers it runs in, not in the request's; the event loop's own
work (callbacks, protocol parsing, task switches) in none of them.

`install()` (in the bot's process, before the app is built) wraps the layers; `totals()` and `reset()` read and zero
them. bench/bot_process.py serves them on its control port (`--layers`).
"""

from __future__ import annotations

import functools
import importlib
import time
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

# (module, class, coroutine method, the layer's name): outermost first.
HTTP_REQUEST = "HTTP request to /api/messages (aiohttp server, middleware, SDK)"
LAYERS: tuple[tuple[str, str, str, str], ...] = (
    ("aiohttp.web_protocol", "RequestHandler", "_handle_request", HTTP_REQUEST),
    ("microsoft_agents.hosting.core.channel_service_adapter", "ChannelServiceAdapter", "process_activity", "SDK turn"),
    ("bot.teams.commands", "TypedCommands", "on_message", "typed command (tapbot)"),
    ("bot.teams.handlers", "TapHandlers", "on_issue", "/tap issue handler"),
    ("bot.teams.handlers", "TapHandlers", "on_revoke", "/tap revoke handler"),
    ("bot.domain.service", "TapService", "issue", "TapService.issue"),
    ("bot.domain.service", "TapService", "revoke", "TapService.revoke"),
    ("bot.teams.pass_delivery", "PassDelivery", "deliver", "pass delivery (card sent and recorded)"),
    ("bot.adapters.graph_calls", "GraphCalls", "_json", "Graph request (SDK build, middleware, pacer, transport)"),
    ("microsoft_agents.hosting.core.channel_service_adapter", "ChannelServiceAdapter", "send_activities", "send"),
    ("microsoft_agents.hosting.core.channel_service_adapter", "ChannelServiceAdapter", "update_activity", "update"),
    ("sqlalchemy.ext.asyncio.engine", "AsyncConnection", "execute", "SQL statement (SQLAlchemy Core)"),
    ("sqlalchemy.ext.asyncio.session", "AsyncSession", "execute", "SQL statement (ORM session)"),
)

_seconds: dict[str, float] = {}
_calls: dict[str, int] = {}


def install() -> None:
    for module_name, class_name, method, layer in LAYERS:
        owner = getattr(importlib.import_module(module_name), class_name)
        setattr(owner, method, _timed(getattr(owner, method), layer))


def reset() -> None:
    _seconds.clear()
    _calls.clear()


def totals() -> dict[str, tuple[float, int]]:
    """Each layer's CPU seconds and calls since the last reset, in LAYERS' order."""
    return {layer: (_seconds[layer], _calls[layer]) for *_, layer in LAYERS if layer in _calls}


def _counted(layer: str, args: tuple[Any, ...]) -> bool:
    """The HTTP layer counts the bot's requests only, not the benchmark's control requests (served by the same
    aiohttp class on another port)."""
    return layer != HTTP_REQUEST or getattr(args[1], "path", "") == "/api/messages"


def _timed(method: Callable[..., Coroutine[Any, Any, Any]], layer: str) -> Callable[..., Coroutine[Any, Any, Any]]:
    def steps(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        """Drives the coroutine step by step (as `await` would), timing each step on the thread's CPU clock."""
        coroutine = method(*args, **kwargs)
        if not _counted(layer, args):
            return (yield from coroutine.__await__())
        spent = 0.0
        sent: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                started = time.thread_time()
                try:
                    if thrown is not None:
                        error, thrown = thrown, None
                        yielded = coroutine.throw(error)
                    else:
                        yielded = coroutine.send(sent)
                except StopIteration as stop:
                    return stop.value
                finally:
                    spent += time.thread_time() - started
                try:
                    sent = yield yielded
                except BaseException as error:  # thrown in by the task (cancellation): handed on to the coroutine
                    thrown = error
        finally:
            coroutine.close()
            _seconds[layer] = _seconds.get(layer, 0.0) + spent
            _calls[layer] = _calls.get(layer, 0) + 1

    driven = types.coroutine(steps)

    @functools.wraps(method)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        awaited: Awaitable[Any] = driven(*args, **kwargs)
        return await awaited

    return timed
