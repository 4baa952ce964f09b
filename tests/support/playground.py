"""Drive the Microsoft 365 Agents Playground (npm ``@microsoft/m365agentsplayground``) over its HTTP API.

No browser is involved: the harness starts the Playground's Node server bound to 127.0.0.1, talks to the
same HTTP endpoints its web UI uses, and listens on its two WebSockets:

* ``/_ws_conversation/v1/conversations/stream`` — what the chat UI renders (``createMessage``,
  ``updateMessage``, ``typing``), collected as :class:`BotMessage`;
* ``/_ws/log/stream`` — the log panel: every activity the Playground POSTs to the bot and every connector
  call the bot makes (request body, status, response body), collected as :class:`LogEntry`.

Usage::

    async with Playground(bot_endpoint) as pg:
        await pg.send_personal("hello")
        reply = await pg.wait_for_message(lambda m: m.text == "echo: hello")

See ``docs/playground.md`` for the wire formats and the Playground's quirks.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import re
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO_ROOT / "node_modules"
PACKAGE_DIR = NODE_MODULES / "@microsoft" / "m365agentsplayground"
LOOPBACK_PRELOAD = Path(__file__).resolve().parents[2] / "tools" / "loopback.cjs"
CONFIG_FILE_NAME = ".m365agentsplayground.yml"
LOG_FILE = Path("devTools") / "m365agentsplayground.log"
HOST = "127.0.0.1"

PLAYGROUND_LABEL = "Microsoft 365 Agents Playground"
BOT_LABEL = "User Application"
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")
_LISTENING = re.compile(rb"Listening on (\d+)")


class PlaygroundError(RuntimeError):
    """The Playground could not be started (message carries its output and log file)."""


class PlaygroundAPIError(RuntimeError):
    """A Playground HTTP API call answered with a non-2xx status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body}")
        self.method = method
        self.path = path
        self.status = status
        self.body = body


def free_port(host: str = HOST) -> int:
    """A TCP port that was free on ``host`` a moment ago (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def find_cli() -> Path | None:
    """The Playground's CLI script (``bin.agentsplayground`` of its package.json), if installed."""
    manifest = PACKAGE_DIR / "package.json"
    if not manifest.is_file():
        return None
    bins = json.loads(manifest.read_text(encoding="utf-8")).get("bin", {})
    rel = bins.get("agentsplayground") if isinstance(bins, dict) else None
    cli = PACKAGE_DIR / (rel or "cli.js")
    return cli if cli.is_file() else None


def playground_unavailable_reason() -> str | None:
    """``None`` when node and the npm package are present, else a human-readable reason."""
    if shutil.which(os.environ.get("NODE", "node")) is None:
        return "node is not on PATH"
    if find_cli() is None:
        return f"{PACKAGE_DIR} is missing: run `npm ci` in {REPO_ROOT}"
    return None


def _user(index: int, first: str, last: str) -> dict[str, str]:
    login = f"{first.lower()}{last[0].lower()}@contoso.example"
    return {
        "id": f"user-id-{index}",
        "name": f"{first} {last}",
        "userPrincipleName": login,  # sic: the Playground's schema spells it "Principle"
        "aadObjectId": f"00000000-0000-0000-0000-0000000000{20 + index}",
        "givenName": first,
        "surname": last,
        "email": login,
    }


def default_config() -> dict[str, Any]:
    """A valid Playground config (schema version 0.1.1): tenant, bot, current user, exactly five other
    users, the personal chat, one group chat and one team with one extra channel (the General channel,
    whose id is the team id, is added by the Playground itself)."""
    return {
        "version": "0.1.1",
        "tenantId": "11111111-2222-3333-4444-555555555555",
        "bot": {"id": "00000000-0000-0000-0000-0000000000b0", "name": "TAP Bot"},
        "currentUser": _user(0, "Alex", "Wilber"),
        "users": [
            _user(1, "Megan", "Bowen"),
            _user(2, "Adele", "Vance"),
            _user(3, "Isaiah", "Langer"),
            _user(4, "Patti", "Fernandez"),
            _user(5, "Lynne", "Robbins"),
        ],
        "personalChat": {"id": "personal-chat-id"},
        "groupChat": {"id": "group-chat-id", "name": "IT Operations"},
        "team": {
            "id": "team-id",
            "name": "IT Department",
            "aadGroupId": "00000000-0000-0000-0000-000000000031",
            "channels": [{"id": "channel-helpdesk-id", "name": "Helpdesk"}],
        },
    }


def render_config(config: Mapping[str, Any]) -> str:
    """The config file text. YAML 1.2 is a superset of JSON and the Playground parses the file with the
    ``yaml`` npm package, so JSON is written: exact, and no YAML emitter is needed."""
    return json.dumps(config, indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class SentMessage:
    """What ``POST /_conversation/v1/conversations/{id}/messages`` answered."""

    message_id: str
    conversation_id: str
    """The conversation the message was stored in: the chat id, or for a new channel post
    ``<channel id>;messageid=<message id>`` (the id the bot sees as ``conversation.id``)."""
    timestamp: int


@dataclass(frozen=True)
class BotMessage:
    """One ``createMessage``/``updateMessage`` event of the conversation WebSocket."""

    kind: str
    """``"create"`` or ``"update"``."""
    conversation_id: str
    """``actionConversationId``: the chat id, the channel id (first message of a new channel post) or
    the post id ``<channel>;messageid=<id>`` (a reply inside a channel thread)."""
    post_conversation_id: str | None
    """For the first message of a new channel post: ``<channel>;messageid=<id>``."""
    conversation_type: str
    """``personal``, ``groupChat``, ``channel`` or ``unknown`` (derived from the config's ids)."""
    message_id: str
    from_id: str
    text: str | None
    text_format: str | None
    attachments: list[dict[str, Any]]
    mentions: list[dict[str, Any]]
    raw: dict[str, Any]

    @property
    def thread_id(self) -> str:
        """The conversation id the message is stored under (use it for invokes and replies)."""
        return self.post_conversation_id or self.conversation_id

    @property
    def card(self) -> dict[str, Any] | None:
        """The first Adaptive Card attachment's content, if any."""
        for attachment in self.attachments:
            if attachment.get("contentType") == ADAPTIVE_CARD:
                content = attachment.get("content")
                return content if isinstance(content, dict) else None
        return None


@dataclass(frozen=True)
class LogEntry:
    """One ``appendLog`` event of the log WebSocket with ``type == "bot"`` (an HTTP exchange)."""

    direction: str
    """``"to_bot"`` (the Playground POSTed an activity to the bot) or ``"from_bot"`` (a connector call)."""
    name: str | None
    """``activityName``: the activity type (``message``, ``invoke`` …) or the connector call
    (``createConversation``, ``getConversationMembers`` …)."""
    conversation_id: str | None
    request: dict[str, Any]
    status: int | None
    response: Any
    raw: dict[str, Any] = field(repr=False)


MessagePredicate = Callable[[BotMessage], bool]
LogPredicate = Callable[[LogEntry], bool]


class Playground:
    """Start the Playground for ``bot_endpoint`` and drive it; ``async with Playground(...) as pg``.

    ``config`` is the mock tenant (see :func:`default_config`); ``timezone`` sets ``TZ`` for the Node
    process, which is what the Playground reports as ``clientInfo.timezone`` and ``localTimezone``.
    """

    def __init__(
        self,
        bot_endpoint: str,
        config: Mapping[str, Any] | None = None,
        *,
        timezone: str | None = None,
        start_timeout: float = 30.0,
        keep_workdir: bool = False,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.bot_endpoint = bot_endpoint
        self.config: dict[str, Any] = copy.deepcopy(dict(config)) if config else default_config()
        self.timezone = timezone
        self.start_timeout = start_timeout
        self.keep_workdir = keep_workdir or os.environ.get("PLAYGROUND_KEEP_WORKDIR") == "1"
        self.extra_env = dict(extra_env or {})
        self.port = 0
        self.node_timezone = timezone or "UTC"
        """The IANA zone the Playground reports (``clientInfo.timezone``); read back after start."""
        self.workdir: Path | None = None
        self.messages: list[BotMessage] = []
        self.logs: list[LogEntry] = []
        self.typing: list[str] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._stdout = bytearray()
        self._stderr = bytearray()
        self._pipe_tasks: list[asyncio.Task[None]] = []
        self._ws_tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._changed = asyncio.Condition()

    # ------------------------------------------------------------------ config views

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def service_url(self) -> str:
        return f"{self.base_url}/_connector"

    @property
    def bot_id(self) -> str:
        return str(self.config["bot"]["id"])

    @property
    def bot_name(self) -> str:
        return str(self.config["bot"]["name"])

    @property
    def tenant_id(self) -> str:
        return str(self.config["tenantId"])

    @property
    def current_user(self) -> dict[str, Any]:
        return dict(self.config["currentUser"])

    @property
    def users(self) -> list[dict[str, Any]]:
        return [dict(u) for u in self.config["users"]]

    @property
    def personal_chat_id(self) -> str:
        return str(self.config["personalChat"]["id"])

    @property
    def group_chat_id(self) -> str:
        return str(self.config["groupChat"]["id"])

    @property
    def team_id(self) -> str:
        """Also the id of the team's General channel."""
        return str(self.config["team"]["id"])

    @property
    def channel_id(self) -> str:
        """The configured extra channel, or General when none is configured."""
        channels = self.config["team"].get("channels") or []
        return str(channels[0]["id"]) if channels else self.team_id

    def conversation_type(self, conversation_id: str) -> str:
        top = conversation_id.split(";", 1)[0]
        channel_ids = {self.team_id, *(str(c["id"]) for c in self.config["team"].get("channels") or [])}
        if top in channel_ids:
            return "channel"
        if top == self.group_chat_id:
            return "groupChat"
        if top == self.personal_chat_id or top.endswith("@test.user"):
            return "personal"
        return "unknown"

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Playground:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        reason = playground_unavailable_reason()
        if reason:
            raise PlaygroundError(reason)
        self.workdir = Path(tempfile.mkdtemp(prefix="playground-"))
        (self.workdir / CONFIG_FILE_NAME).write_text(render_config(self.config), encoding="utf-8")
        self._session = aiohttp.ClientSession()
        try:
            last_error: PlaygroundError | None = None
            for _attempt in range(3):
                try:
                    await self._launch()
                    break
                except _PortTaken as err:
                    last_error = PlaygroundError(str(err))
                    await self._kill()
            else:
                raise last_error or PlaygroundError("could not start the Playground")
            await self._connect_websockets()
            internal = (await self.get_config()).get("internalConfig") or {}
            self.node_timezone = str(internal.get("localTimezone") or "UTC")
        except BaseException:
            await self.stop()
            raise

    async def _launch(self) -> None:
        cli = find_cli()
        assert cli is not None and self.workdir is not None
        self.port = free_port()
        node = shutil.which(os.environ.get("NODE", "node")) or "node"
        cmd = [
            node,
            "--require",
            str(LOOPBACK_PRELOAD),
            str(cli),
            "-e",
            self.bot_endpoint,
            "-c",
            "msteams",
            "-p",
            str(self.port),
            "--service-url",
            self.service_url,
            "--disable-telemetry",
        ]
        env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
        env.update(
            {
                "TEAMSAPPTESTER_BROWSER": "none",  # never open a browser
                "LOOPBACK_HOST": HOST,
                "PLAYGROUND_PARENT_PID": str(os.getpid()),  # loopback.cjs exits if this process dies
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            }
        )
        for var in (
            "M365_AGENTS_PLAYGROUND_CONFIG_PATH",
            "TEAMS_APP_TEST_TOOL_CONFIG_PATH",
            "M365_AGENTS_PLAYGROUND_LOGFILE",
            "TEAMSAPPTESTER_LOGFILE",
            "TEAMSAPPTESTER_PORT",
            "BOT_ENDPOINT",
        ):
            env.pop(var, None)
        if self.timezone:
            env["TZ"] = self.timezone
        env.update(self.extra_env)
        self._stdout.clear()
        self._stderr.clear()
        self._proc = await asyncio.create_subprocess_exec(
            *cmd,
            cwd=self.workdir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, so stop() can kill children too
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._pipe_tasks = [
            asyncio.create_task(self._drain(self._proc.stdout, self._stdout)),
            asyncio.create_task(self._drain(self._proc.stderr, self._stderr)),
        ]
        await self._wait_ready()

    @staticmethod
    async def _drain(stream: asyncio.StreamReader, sink: bytearray) -> None:
        while chunk := await stream.read(65536):
            sink.extend(chunk)

    async def _wait_ready(self) -> None:
        assert self._proc is not None and self._session is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while True:
            if self._proc.returncode is not None:
                await asyncio.sleep(0.1)  # let the pipes drain
                raise PlaygroundError(self._failure(f"the Playground exited with code {self._proc.returncode}"))
            match = _LISTENING.search(bytes(self._stdout))
            if match and int(match.group(1)) != self.port:
                # Its port probe found our port taken and it silently fell back to a random one.
                raise _PortTaken(f"port {self.port} was taken; the Playground chose {match.group(1)}")
            if match:
                try:
                    async with self._session.get(
                        f"{self.base_url}/_debug/ping", timeout=aiohttp.ClientTimeout(total=2)
                    ) as resp:
                        if resp.status == 200 and (await resp.text()) == "pong":
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
            if loop.time() > deadline:
                raise PlaygroundError(self._failure(f"no pong from /_debug/ping within {self.start_timeout} s"))
            await asyncio.sleep(0.05)

    def _failure(self, headline: str) -> str:
        parts = [headline, f"workdir: {self.workdir}"]
        parts.append("stdout:\n" + self._stdout.decode(errors="replace").strip())
        parts.append("stderr:\n" + self._stderr.decode(errors="replace").strip())
        log_file = self.workdir / LOG_FILE if self.workdir else None
        if log_file and log_file.is_file():
            parts.append(f"{LOG_FILE}:\n" + log_file.read_text(encoding="utf-8", errors="replace")[-8000:].strip())
        return "\n".join(parts)

    async def _connect_websockets(self) -> None:
        assert self._session is not None
        ws_base = f"ws://{HOST}:{self.port}"
        conversation = await self._session.ws_connect(f"{ws_base}/_ws_conversation/v1/conversations/stream")
        log = await self._session.ws_connect(f"{ws_base}/_ws/log/stream")
        self._ws_tasks = [
            asyncio.create_task(self._read_ws(conversation, self._on_conversation_event)),
            asyncio.create_task(self._read_ws(log, self._on_log_event)),
        ]

    async def _read_ws(self, ws: aiohttp.ClientWebSocketResponse, handler: Callable[[dict[str, Any]], None]) -> None:
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                if isinstance(data, dict):
                    handler(data)
                    async with self._changed:
                        self._changed.notify_all()
        finally:
            await ws.close()
            async with self._changed:  # wake waiters so they notice a dead Playground
                self._changed.notify_all()

    def _on_conversation_event(self, data: dict[str, Any]) -> None:
        action = data.get("action")
        conversation_id = str(data.get("actionConversationId", ""))
        if action == "typing":
            self.typing.append(conversation_id)
            return
        if action not in ("createMessage", "updateMessage"):
            return
        message = data.get("message") or {}
        self.messages.append(
            BotMessage(
                kind="create" if action == "createMessage" else "update",
                conversation_id=conversation_id,
                post_conversation_id=message.get("postConversationId"),
                conversation_type=self.conversation_type(conversation_id),
                message_id=str(message.get("messageId", "")),
                from_id=str((message.get("from") or {}).get("id", "")),
                text=message.get("text"),
                text_format=message.get("textFormat"),
                attachments=list(message.get("attachments") or []),
                mentions=list(message.get("mentions") or []),
                raw=data,
            )
        )

    def _on_log_event(self, data: dict[str, Any]) -> None:
        item = data.get("log") or {}
        if item.get("type") != "bot":
            return
        request = item.get("request") or {}
        response = item.get("response") or {}
        self.logs.append(
            LogEntry(
                direction="to_bot" if item.get("from") == PLAYGROUND_LABEL else "from_bot",
                name=item.get("activityName"),
                conversation_id=item.get("conversationId"),
                request=request.get("body") or {},
                status=response.get("statusCode"),
                response=response.get("body"),
                raw=item,
            )
        )

    async def stop(self) -> None:
        for task in self._ws_tasks:
            task.cancel()
        for task in self._ws_tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._ws_tasks = []
        await self._kill()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self.workdir is not None and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    async def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.returncode is None:
                self._signal_group(proc.pid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 5)
                except TimeoutError:
                    self._signal_group(proc.pid, signal.SIGKILL)
                    await proc.wait()
            else:
                self._signal_group(proc.pid, signal.SIGKILL)  # stray children of a dead leader
        for task in self._pipe_tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 2)
        self._pipe_tasks = []

    @staticmethod
    def _signal_group(pid: int, sig: signal.Signals) -> None:
        # start_new_session=True made the process its own group leader: pgid == pid.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)

    # ------------------------------------------------------------------ HTTP API

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        if self._session is None:
            raise RuntimeError("the Playground is not running")
        async with self._session.request(
            method, f"{self.base_url}{path}", json=body, timeout=aiohttp.ClientTimeout(total=30)
        ) as resp:
            text = await resp.text()
            if resp.status >= 300:
                raise PlaygroundAPIError(method, path, resp.status, text)
            if not text:
                return None
            try:
                return json.loads(text)
            except ValueError:
                return text

    async def get_config(self) -> dict[str, Any]:
        """``GET /_internal/v1/testConfig``: the config as the Playground understood it (answers at once;
        ``/_internal/v1/config`` first waits up to 15 s for the bot endpoint to answer)."""
        return dict(await self._request("GET", "/_internal/v1/testConfig"))

    def _mention_markup(self) -> tuple[str, list[dict[str, Any]]]:
        tag = f"<at>{self.bot_name}</at>"
        return tag, [{"mentioned": {"id": self.bot_id}, "text": tag}]

    async def send_message(
        self,
        conversation_id: str,
        text: str,
        *,
        mention_bot: bool = False,
        from_id: str | None = None,
        text_format: str = "plain",
    ) -> SentMessage:
        """Post ``text`` as the current user into any conversation (chat id, channel id or
        ``<channel>;messageid=<id>`` to reply in a thread). Outside the personal chat the bot only
        receives messages that mention it. ``from_id`` is validated as a member of the conversation but
        the activity the bot gets is always from ``currentUser``."""
        body: dict[str, Any] = {
            "from": {"id": from_id or self.current_user["id"]},
            "text": text,
            "textFormat": text_format,
        }
        if mention_bot:
            tag, mentions = self._mention_markup()
            body["text"] = f"{tag} {text}"
            body["mentions"] = mentions
        path = f"/_conversation/v1/conversations/{conversation_id}/messages"
        answer = await self._request("POST", path, body)
        return SentMessage(
            message_id=str(answer["messageId"]),
            conversation_id=str(answer.get("postConversationId") or conversation_id),
            timestamp=int(answer["timestamp"]),
        )

    async def send_personal(self, text: str) -> SentMessage:
        return await self.send_message(self.personal_chat_id, text)

    async def send_group(self, text: str, *, mention_bot: bool = True) -> SentMessage:
        return await self.send_message(self.group_chat_id, text, mention_bot=mention_bot)

    async def send_channel(
        self,
        text: str,
        *,
        mention_bot: bool = True,
        channel_id: str | None = None,
        thread: str | None = None,
    ) -> SentMessage:
        """A new post in ``channel_id`` (default: the configured channel), or a reply in ``thread``
        (a ``<channel>;messageid=<id>`` id from an earlier :class:`SentMessage`/:class:`BotMessage`)."""
        return await self.send_message(thread or channel_id or self.channel_id, text, mention_bot=mention_bot)

    async def invoke_action(
        self,
        message: BotMessage | str,
        verb: str,
        data: Mapping[str, Any] | None = None,
        *,
        conversation_id: str | None = None,
        from_id: str | None = None,
        title: str | None = None,
    ) -> dict[str, Any]:
        """Click an ``Action.Execute`` on a message: ``POST /_conversation/v1/invoke``. ``data`` is the
        action's data merged with the card inputs. ``from_id`` may be any member of the conversation
        (unlike messages, invokes really come from that user). Returns the bot's invoke response body
        without its status code: ``{"type": ..., "value": ...}``."""
        if isinstance(message, BotMessage):
            message_id, conv = message.message_id, conversation_id or message.thread_id
        else:
            if conversation_id is None:
                raise ValueError("conversation_id is required with a bare message id")
            message_id, conv = message, conversation_id
        action: dict[str, Any] = {"type": "Action.Execute", "verb": verb, "data": dict(data or {})}
        if title is not None:
            action["title"] = title
        body = {
            "name": "adaptiveCard/action",
            "value": {"action": action},
            "from": {"id": from_id or self.current_user["id"]},
            "conversation": {"id": conv},
            "replyToId": message_id,
        }
        return dict(await self._request("POST", "/_conversation/v1/invoke", body))

    async def custom_activity_template(self, conversation_id: str | None = None, kind: str | None = None) -> Any:
        """``GET /_internal/v1/customActivities/template``: the base activity the Playground would use for
        ``conversation_id`` (``kind``: install, uninstall, botAdded, userAdded, channelCreated …)."""
        query = f"?conversationId={conversation_id or self.personal_chat_id}"
        if kind:
            query += f"&type={kind}"
        return await self._request("GET", f"/_internal/v1/customActivities/template{query}")

    async def send_custom_activity(
        self, activity: Mapping[str, Any], *, conversation_id: str | None = None, merge_template: bool = True
    ) -> dict[str, Any]:
        """Send any activity to the bot: ``POST /_internal/v1/customActivities``. The Playground forwards
        the body verbatim, answers 200 before delivering it and drops the bot's answer.

        With ``merge_template`` (default) ``activity`` is deep-merged (lists replaced) over a base made
        of the Playground's template for ``conversation_id`` (id, timestamp, serviceUrl, channelId,
        ``from`` = current user, recipient = bot, conversation) plus what the template lacks but a real
        Teams message carries: ``from.name``, ``locale``, ``channelData.tenant`` (and ``team``/``channel``
        for a channel) and a ``clientInfo`` entity. Returns the activity sent."""
        body: dict[str, Any] = {}
        if merge_template:
            conv = conversation_id or self.personal_chat_id
            template = await self.custom_activity_template(conv)
            body = dict(template) if isinstance(template, dict) else {}
            body.pop("type", None)
            _deep_merge(body, self._teams_defaults(conv))
        _deep_merge(body, activity)
        await self._request("POST", "/_internal/v1/customActivities", body)
        return body

    def _teams_defaults(self, conversation_id: str) -> dict[str, Any]:
        kind = self.conversation_type(conversation_id)
        channel_data: dict[str, Any] = {"tenant": {"id": self.tenant_id}}
        client_info: dict[str, Any] = {"type": "clientInfo", "locale": "en-US", "country": "US"}
        if kind == "channel":
            channel = conversation_id.split(";", 1)[0]
            channel_data.update({"team": {"id": self.team_id}, "channel": {"id": channel}})
        else:
            client_info["platform"] = "Web"
        client_info["timezone"] = self.node_timezone
        return {
            "from": {"name": self.current_user["name"]},
            "locale": "en-US",
            "channelData": channel_data,
            "entities": [client_info],
        }

    async def send_installation(self, conversation_id: str | None = None) -> None:
        """What the web UI does when a conversation is opened the first time: an ``installationUpdate``
        (add) and a ``conversationUpdate`` (membersAdded: the bot) are sent to the bot."""
        await self._request("POST", f"/_debug/conversation/{conversation_id or self.personal_chat_id}/installation", {})

    # ------------------------------------------------------------------ waiting

    def _raise_if_dead(self) -> None:
        if self._proc is not None and self._proc.returncode is not None:
            raise PlaygroundError(self._failure(f"the Playground died (exit code {self._proc.returncode})"))

    async def _wait_for(self, find: Callable[[], Any], timeout: float) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self._changed:
            while True:
                found = find()
                if found is not None:
                    return found
                self._raise_if_dead()
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_for_message(
        self,
        predicate: MessagePredicate | None = None,
        timeout: float = 10.0,
        *,
        kind: str | None = None,
        since: int = 0,
    ) -> BotMessage:
        """The first collected :class:`BotMessage` (from index ``since`` of :attr:`messages`) of ``kind``
        (``create``/``update``/any) matching ``predicate``; waits up to ``timeout`` seconds."""

        def find() -> BotMessage | None:
            for message in self.messages[since:]:
                if (kind is None or message.kind == kind) and (predicate is None or predicate(message)):
                    return message
            return None

        def describe() -> str:
            seen = "\n".join(f"  {m.kind} {m.conversation_id} {m.text!r} {m.attachments}" for m in self.messages)
            return f"no matching bot message within {timeout} s; messages so far:\n{seen or '  (none)'}"

        try:
            result: BotMessage = await self._wait_for(find, timeout)
        except TimeoutError:
            raise TimeoutError(describe()) from None
        return result

    async def wait_for_log(self, predicate: LogPredicate, timeout: float = 10.0, *, since: int = 0) -> LogEntry:
        """The first :class:`LogEntry` (from index ``since`` of :attr:`logs`) matching ``predicate``."""

        def find() -> LogEntry | None:
            return next((entry for entry in self.logs[since:] if predicate(entry)), None)

        try:
            result: LogEntry = await self._wait_for(find, timeout)
        except TimeoutError:
            seen = "\n".join(f"  {e.direction} {e.name} {e.conversation_id} {e.status}" for e in self.logs)
            raise TimeoutError(f"no matching log entry within {timeout} s; log so far:\n{seen}") from None
        return result

    def activities_sent_to_bot(self) -> list[dict[str, Any]]:
        """Every activity the Playground POSTed to the bot (from the log stream), oldest first."""
        return [entry.request for entry in self.logs if entry.direction == "to_bot"]


class _PortTaken(Exception):
    pass


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_playground() -> None:
    """Skip only when the npm package is not installed and we are not in CI; otherwise fail loudly."""
    import pytest

    reason = playground_unavailable_reason()
    if reason is None:
        return
    if not PACKAGE_DIR.exists() and not _in_ci():
        pytest.skip(f"Microsoft 365 Agents Playground not installed: {reason}")
    why = " (CI is set: a missing Playground is a failure there, not a skip)" if _in_ci() else ""
    pytest.fail(f"Microsoft 365 Agents Playground unusable: {reason}{why}")
