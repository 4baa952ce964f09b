"""The bot alone in a process of its own, for the benchmarks: what they measure there is the bot's CPU, memory and
start, not the test client, the recording Bot Connector and the card checks that play Teams in the benchmark's
process.

`python -m bench.bot_process --settings <file.json> [--loop app|asyncio|uvloop]` builds the app with the real factory
(`bot.server.create_app`) from the settings in the file (the same environment mapping the in-process harness gives
`Settings.from_env`), serves it on 127.0.0.1 on a free port on the event loop `python app.py` uses (or the one
named), waits for the start-up warm-up and prints one line to stdout: `BOT_READY url=<bot url> control=<control url>
loop=<asyncio|uvloop> imports_ms=<n> started_ms=<n> ready_ms=<n>` (milliseconds since this module began, before its
imports). The bot's replies go to the connector its activities name (`serviceUrl`): the
benchmark's recording connector.

The control server (another port in the same process, never part of the bot's app) is the benchmark's only way in:
`POST /profile/start|stop` (cProfile of the event loop's thread, by its CPU clock unless `--profile-timer wall`),
`POST /profile/dump?path=` (pstats file), `GET /layers` and `POST /layers/reset` (the CPU per layer of bench/layers.py,
with `--layers`), `GET /bulk/{job_id}` (the job's row counts), `POST /bulk/{job_id}/wait`
(the same, once the job has ended), `GET /pacer` (what the pacer did), `POST /stop`.

The benchmark side: `bot_process(env)` starts it with a recording connector and yields a `RemoteBot` that talks to it
like `tests.harness.bot.RunningBot` (say, press, post, activity) and reads the process's CPU and memory from /proc.
"""

from __future__ import annotations

import time

MODULE_STARTED = time.perf_counter()  # before the imports: they are part of a start

import argparse  # noqa: E402
import asyncio  # noqa: E402
import cProfile  # noqa: E402
import gc  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import AsyncIterator, Callable  # noqa: E402
from contextlib import asynccontextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

if TYPE_CHECKING:
    from tests.harness.bot import Person
    from tests.harness.connector import RecordingConnector

PROJECT = Path(__file__).resolve().parent.parent
READY_PREFIX = "BOT_READY "
LOOPS = ("app", "asyncio", "uvloop")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- the bot's process --------------------------------------------------------------------------------------------


class CollectionTimes:
    """The garbage collector's collections per generation, and the time they took (`gc.callbacks`)."""

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._started = 0.0

    def install(self) -> None:
        gc.callbacks.append(self._callback)

    def reset(self) -> None:
        self.counts, self.seconds = [0, 0, 0], [0.0, 0.0, 0.0]

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            generation = info["generation"]
            self.counts[generation] += 1
            self.seconds[generation] += time.perf_counter() - self._started


class Control:
    """The benchmark's handles on the bot in this process; served on its own port, outside the bot's app."""

    def __init__(self, bot_app: web.Application, stop: asyncio.Event, profile_timer: str) -> None:
        self.bot_app = bot_app
        self.stop = stop
        # cProfile's default clock is wall time: a function waiting (epoll's poll while Graph answers) would count
        # its wait as if it were work. The thread's CPU clock counts only what the event loop's thread ran.
        self.profiler = cProfile.Profile(time.thread_time) if profile_timer == "cpu" else cProfile.Profile()
        self.collections = CollectionTimes()
        self.collections.install()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/profile/start", self.profile_start)
        app.router.add_post("/profile/stop", self.profile_stop)
        app.router.add_post("/profile/dump", self.profile_dump)
        app.router.add_get("/layers", self.layer_totals)
        app.router.add_post("/layers/reset", self.layers_reset)
        app.router.add_get("/bulk/{job_id}", self.bulk_counts)
        app.router.add_post("/bulk/{job_id}/wait", self.bulk_wait)
        app.router.add_get("/pacer", self.pacer)
        app.router.add_get("/gc", self.gc_times)
        app.router.add_post("/gc/reset", self.gc_reset)
        app.router.add_post("/stop", self.stop_bot)
        return app

    async def profile_start(self, _request: web.Request) -> web.Response:
        self.profiler.enable()
        return web.Response(text="on")

    async def profile_stop(self, _request: web.Request) -> web.Response:
        self.profiler.disable()
        return web.Response(text="off")

    async def profile_dump(self, request: web.Request) -> web.Response:
        self.profiler.dump_stats(request.query["path"])
        return web.Response(text="dumped")

    async def layer_totals(self, _request: web.Request) -> web.Response:
        from bench import layers

        return web.json_response(layers.totals())

    async def layers_reset(self, _request: web.Request) -> web.Response:
        from bench import layers

        layers.reset()
        return web.Response(text="reset")

    async def bulk_counts(self, request: web.Request) -> web.Response:
        from bot.server import COMPONENTS

        bulk = self.bot_app[COMPONENTS].bulk._bulk  # pyright: ignore[reportPrivateUsage]
        counts = await bulk.counts(int(request.match_info["job_id"]))
        return web.json_response({state.value: n for state, n in counts.items()})

    async def bulk_wait(self, request: web.Request) -> web.Response:
        """Answers once the job has ended (every row done), with its row counts."""
        from bot.server import COMPONENTS

        components = self.bot_app[COMPONENTS]
        job_id = int(request.match_info["job_id"])
        await components.bulk.wait(job_id)
        counts = await components.bulk._bulk.counts(job_id)  # pyright: ignore[reportPrivateUsage]
        return web.json_response({state.value: n for state, n in counts.items()})

    async def pacer(self, _request: web.Request) -> web.Response:
        from bench.bulk_issue import pacer_summary  # loaded only when asked, after the measurements
        from bot.server import COMPONENTS

        return web.json_response({"summary": pacer_summary(self.bot_app[COMPONENTS].pacer)})

    async def gc_times(self, _request: web.Request) -> web.Response:
        return web.json_response({"counts": self.collections.counts, "seconds": self.collections.seconds})

    async def gc_reset(self, _request: web.Request) -> web.Response:
        self.collections.reset()
        return web.Response(text="reset")

    async def stop_bot(self, _request: web.Request) -> web.Response:
        self.stop.set()
        return web.Response(text="stopping")


def since_start_ms() -> int:
    return round((time.perf_counter() - MODULE_STARTED) * 1000)


async def serve(settings_file: Path, profile_timer: str, imports_ms: int) -> None:
    from bot.logging_setup import configure_logging
    from bot.server import create_app
    from bot.settings import Settings

    env: dict[str, str] = json.loads(await asyncio.to_thread(settings_file.read_text))
    settings = Settings.from_env(env)
    configure_logging(settings.log_level, settings.log_format)  # as app.py does: the log lines are part of the work
    app = await create_app(settings, own_process=True)  # as app.py
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    started_ms = since_start_ms()
    for task in asyncio.all_tasks():  # the Graph models loaded in a thread at start (bot/server.py)
        if task.get_name() == "graph-warm-up":
            await task
    ready_ms = since_start_ms()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    control = web.AppRunner(Control(app, stop, profile_timer).app(), access_log=None)
    await control.setup()
    await web.TCPSite(control, "127.0.0.1", 0).start()
    bot_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    control_url = f"http://127.0.0.1:{control.addresses[0][1]}"
    loop_name = type(loop).__module__.split(".")[0]  # asyncio or uvloop
    print(
        f"{READY_PREFIX}url={bot_url} control={control_url} loop={loop_name} imports_ms={imports_ms} "
        f"started_ms={started_ms} ready_ms={ready_ms}",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await control.cleanup()
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description="the bot alone, for a benchmark (see bench/bot_process.py)")
    parser.add_argument("--settings", type=Path, required=True, help="JSON object: the bot's settings environment")
    parser.add_argument("--profile-timer", choices=("cpu", "wall"), default="cpu", help="cProfile's clock")
    parser.add_argument("--loop", choices=LOOPS, default="app", help="the event loop (app: what app.py runs)")
    parser.add_argument("--layers", action="store_true", help="time the bot's layers (bench/layers.py)")
    arguments = parser.parse_args()
    import bot.server  # noqa: F401 - the app's imports, timed apart from its start

    if arguments.layers:
        from bench import layers

        layers.install()

    factory = loop_factory(arguments.loop)
    imports_ms = since_start_ms()
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(arguments.settings, arguments.profile_timer, imports_ms))


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "asyncio":
        return asyncio.new_event_loop
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    import app  # the loop `python app.py` serves on, in versions that choose one

    return getattr(app, "event_loop", asyncio.new_event_loop)


# --- the benchmark's side -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """CPU (user + system, every thread) and memory of a process, from /proc."""

    cpu_seconds: float
    peak_rss_mib: float
    rss_mib: float
    loop_thread_cpu_seconds: float  # of cpu_seconds, the main thread's: the event loop (the rest: SQLite, pools)


def cpu_seconds(stat_file: Path) -> float:
    stat = stat_file.read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": fields 3 on
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def process_usage(pid: int) -> Usage:
    process_cpu = cpu_seconds(Path(f"/proc/{pid}/stat"))
    loop_cpu = cpu_seconds(Path(f"/proc/{pid}/task/{pid}/stat"))
    memory: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            memory[name] = int(value.split()[0]) / 1024
    return Usage(process_cpu, memory.get("VmHWM", 0.0), memory.get("VmRSS", 0.0), loop_cpu)


@dataclass
class RemoteBot:
    """The bot in its own process, driven over HTTP the way Teams drives it (as tests.harness.bot.RunningBot)."""

    url: str
    control_url: str
    loop: str  # the event loop the bot runs on: asyncio or uvloop
    pid: int
    connector: RecordingConnector
    session: aiohttp.ClientSession
    ready_ms: float  # from the spawn to the ready line: interpreter, imports, app start, warm-up
    reported: dict[str, int]  # the process's own imports_ms, started_ms, ready_ms
    ready_usage: Usage
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def usage(self) -> Usage:
        return process_usage(self.pid)

    def start_summary(self, end: Usage) -> str:
        """Time to ready and peak RSS; `end` is the usage read last (before anything loads bench code into it)."""
        imports, started, ready = (self.reported[name] for name in ("imports_ms", "started_ms", "ready_ms"))
        return (
            f"bot process ({self.loop} loop): ready {self.ready_ms:.0f} ms after its spawn (imports {imports} ms, "
            f"app start {started - imports} ms, warm-up {ready - started} ms; without the imports "
            f"{ready - imports} ms; {self.ready_usage.cpu_seconds:.2f} s of CPU until ready); "
            f"peak RSS {self.ready_usage.peak_rss_mib:.0f} MiB after warm-up, "
            f"{end.peak_rss_mib:.0f} MiB at the end"
        )

    async def post(self, activity: dict[str, Any], headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
        async with self.session.post(f"{self.url}/api/messages", json=activity, headers=headers or {}) as response:
            await response.read()
            return response

    def activity(self, person: Person, text: str | None = None, **extra: Any) -> dict[str, Any]:
        from tests.harness.bot import teams_activity

        return teams_activity(f"incoming-{next(self._ids)}", self.connector.url, person, text, **extra)

    async def say(self, person: Person, text: str, **extra: Any) -> aiohttp.ClientResponse:
        return await self.post(self.activity(person, text, **extra))

    async def press(self, person: Person, verb: str, data: dict[str, Any]) -> dict[str, Any]:
        from tests.harness.bot import card_action

        activity = card_action(self.activity(person), verb, data)
        async with self.session.post(f"{self.url}/api/messages", json=activity) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    def personal_chat_of(self, person: Person) -> str:
        return f"a:personal-{person.object_id}"

    async def control(self, method: str, route: str, **params: str) -> Any:
        async with self.session.request(method, f"{self.control_url}{route}", params=params) as response:
            assert response.status == 200, await response.text()
            return await response.json() if response.content_type == "application/json" else await response.text()

    async def profile(self, on: bool) -> None:
        await self.control("POST", "/profile/start" if on else "/profile/stop")

    async def dump_profile(self, path: Path) -> None:
        await self.control("POST", "/profile/dump", path=str(path))

    async def layers(self) -> dict[str, tuple[float, int]]:
        """The CPU seconds and calls of each layer since the last reset (a bot started with `layers=True`)."""
        return {layer: (seconds, calls) for layer, (seconds, calls) in (await self.control("GET", "/layers")).items()}

    async def reset_layers(self) -> None:
        await self.control("POST", "/layers/reset")

    async def bulk_counts(self, job_id: int) -> dict[str, int]:
        return await self.control("GET", f"/bulk/{job_id}")

    async def bulk_finished(self, job_id: int) -> dict[str, int]:
        """The job's row counts once it has ended."""
        return await self.control("POST", f"/bulk/{job_id}/wait")

    async def collections(self, *, reset: bool = False) -> str:
        """The garbage collector's collections since the last reset, per generation: `gen0 n (ms), ...`."""
        times = await self.control("GET", "/gc")
        if reset:
            await self.control("POST", "/gc/reset")
        return ", ".join(
            f"gen{generation} {count} ({seconds * 1000:.0f} ms)"
            for generation, (count, seconds) in enumerate(zip(times["counts"], times["seconds"], strict=True))
        )

    async def pacer_summary(self) -> str:
        try:
            return (await self.control("GET", "/pacer"))["summary"]
        except (AssertionError, aiohttp.ClientError) as error:  # informative only: the measurements are taken
            return f"pacer: no summary ({str(error)[:200]})"


@asynccontextmanager
async def bot_process(
    env: dict[str, str],
    *,
    loop: str = "app",
    profile_timer: str = "cpu",
    start_timeout: float = 120,
    layers: bool = False,
) -> AsyncIterator[RemoteBot]:
    """Starts the bot with these settings in a process of its own, with a recording connector in this one."""
    from tests.harness.connector import RecordingConnector

    connector = await RecordingConnector().start()
    connector.validate_cards = False  # the harness's schema check is not the bot's work
    with tempfile.TemporaryDirectory() as directory:
        settings = Path(directory) / "settings.json"
        settings.write_text(json.dumps(env))
        log = (Path(directory) / "bot.log").open("wb")
        spawned = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.bot_process",
            "--settings",
            str(settings),
            "--profile-timer",
            profile_timer,
            "--loop",
            loop,
            *(["--layers"] if layers else []),
            cwd=PROJECT,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        session = aiohttp.ClientSession()
        try:
            assert process.stdout is not None
            line = (await asyncio.wait_for(process.stdout.readline(), start_timeout)).decode().strip()
            if not line.startswith(READY_PREFIX):
                log.flush()
                output = (await asyncio.to_thread(Path(log.name).read_text, errors="replace"))[-3000:]
                raise RuntimeError(f"the bot process did not start: {line!r}\n{output}")
            ready_ms = (time.perf_counter() - spawned) * 1000
            values = dict(item.split("=", 1) for item in line.removeprefix(READY_PREFIX).split())
            reported = {name: int(value) for name, value in values.items() if name.endswith("_ms")}
            yield RemoteBot(
                values["url"],
                values["control"],
                values["loop"],
                process.pid,
                connector,
                session,
                ready_ms,
                reported,
                process_usage(process.pid),
            )
        finally:
            await session.close()
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except TimeoutError:
                    process.kill()
                    await process.wait()
            log.close()
            await connector.stop()


if __name__ == "__main__":
    main()
