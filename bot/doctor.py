"""`python app.py doctor`: checks a deployment before its first user, one plain sentence per check.

Every check is harmless: it reads, never writes (the permission to create passes is read from the access token's
`roles` claim instead of being tried). `diagnose` returns the findings; `render` turns them into the printed
checklist; app.py prints it and exits 0 when nothing failed, else 1.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from azure.core.credentials_async import AsyncTokenCredential
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from bot.adapters.clock import SystemClock
from bot.adapters.database import create_engine
from bot.adapters.graph import GraphGateway, build_credential, build_graph_client
from bot.adapters.store import Base
from bot.domain.errors import GraphRejected, GraphUnavailable, TapError
from bot.domain.model import ALL_USERS, TapPolicy
from bot.settings import BOT_CONNECTION_PREFIX, LOOPBACK_HOSTS, GraphMode, Settings, SettingsError

logger = logging.getLogger(__name__)

T = TypeVar("T")

DATABASE_TIMEOUT_SECONDS = 15.0
TOKEN_TIMEOUT_SECONDS = 30.0
BOT_FRAMEWORK_RESOURCE = "https://api.botframework.com"

# Application permissions, least privileged first (docs/deployment.md, graph-tap.md).
# Creating and deleting passes: the TAP-only permission (Microsoft's lesser-privileged alternative to the
# all-methods one, per "What's new in Microsoft Graph", October 2025; the delete page lists it), or the broader one.
WRITE_PERMISSION = "UserAuthMethod-TAP.ReadWrite.All"
BROAD_WRITE_PERMISSION = "UserAuthenticationMethod.ReadWrite.All"
WRITE_PERMISSIONS = (WRITE_PERMISSION, BROAD_WRITE_PERMISSION)
USERS_PERMISSION = "User.Read.All"
MEMBERSHIP_PERMISSION = "GroupMember.Read.All"
# roleAssignments and roleEligibilityScheduleInstances: the latter alone would do with
# RoleEligibilitySchedule.Read.Directory, but RoleManagement.Read.Directory, needed for the former, covers both.
ROLES_PERMISSION = "RoleManagement.Read.Directory"
PIM_GROUPS_PERMISSION = "PrivilegedEligibilitySchedule.Read.AzureADGroup"
POLICY_PERMISSION = "Policy.Read.AuthenticationMethod"
PASS_READ_PERMISSION = "UserAuthMethod-TAP.Read.All"
# Listing all of a user's sign-in methods (the new-hire rule of onboarding) is not covered by User.Read.All nor by
# the TAP-only permissions: the "List methods" page names this one as least privileged for applications.
METHODS_PERMISSION = "UserAuthenticationMethod.Read.All"
REQUIRED_PERMISSIONS = (
    WRITE_PERMISSION,
    PASS_READ_PERMISSION,
    METHODS_PERMISSION,
    POLICY_PERMISSION,
    USERS_PERMISSION,
    MEMBERSHIP_PERMISSION,
    ROLES_PERMISSION,
    PIM_GROUPS_PERMISSION,
)
# Permissions that include a narrower one (an app holding the wider one needs nothing more for those reads).
IMPLIED_BY = {
    WRITE_PERMISSION: (BROAD_WRITE_PERMISSION,),
    PASS_READ_PERMISSION: (WRITE_PERMISSION, BROAD_WRITE_PERMISSION, "UserAuthenticationMethod.Read.All"),
    METHODS_PERMISSION: (BROAD_WRITE_PERMISSION,),
    MEMBERSHIP_PERMISSION: ("Group.Read.All", "Directory.Read.All"),
    USERS_PERMISSION: ("Directory.Read.All",),
    ROLES_PERMISSION: ("RoleManagement.ReadWrite.Directory", "RoleManagement.Read.All"),
    PIM_GROUPS_PERMISSION: ("PrivilegedEligibilitySchedule.ReadWrite.AzureADGroup",),
}
# The AUTHTYPE values the Agents SDK's MSAL authentication (1.9) implements, spelled as it compares them (case
# matters: "usermanagedidentity" fails at the first reply), with the settings each needs and what it is.
BOT_AUTH_TYPES: dict[str, tuple[tuple[str, ...], str]] = {
    "ClientSecret": (("CLIENTSECRET",), "client secret"),
    "certificate": (("CERTPFXFILE",), "certificate"),
    "UserManagedIdentity": ((), "user-assigned managed identity, no secret"),
    "SystemManagedIdentity": ((), "system-assigned managed identity, no secret"),
    "FederatedCredentials": (("FEDERATEDCLIENTID",), "federated credential from a managed identity, no secret"),
    "WorkloadIdentity": (("FEDERATEDTOKENFILE",), "workload identity federation, no secret"),
}
_BOT_AUTH_FILES = ("CERTPFXFILE", "FEDERATEDTOKENFILE")


class Mark(enum.StrEnum):
    OK = "✓"
    FAILED = "✗"
    NOT_APPLICABLE = "–"


@dataclass(frozen=True)
class Finding:
    mark: Mark
    sentence: str
    check: str = ""  # a short stable name, for tests and scripts

    @classmethod
    def ok(cls, check: str, sentence: str) -> Finding:
        return cls(Mark.OK, sentence, check)

    @classmethod
    def failed(cls, check: str, sentence: str) -> Finding:
        return cls(Mark.FAILED, sentence, check)

    @classmethod
    def not_applicable(cls, check: str, sentence: str) -> Finding:
        return cls(Mark.NOT_APPLICABLE, sentence, check)


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]

    @property
    def healthy(self) -> bool:
        return not any(finding.mark is Mark.FAILED for finding in self.findings)

    def finding(self, check: str) -> Finding:
        return next(finding for finding in self.findings if finding.check == check)


def render(report: Report) -> str:
    """The printed checklist: one line per finding, then a summary line."""
    lines = ["tapbot doctor", ""]
    lines += [f"{finding.mark.value} {finding.sentence}" for finding in report.findings]
    failed = sum(finding.mark is Mark.FAILED for finding in report.findings)
    passed = sum(finding.mark is Mark.OK for finding in report.findings)
    lines.append("")
    if failed:
        lines.append(
            f"{failed} check(s) failed, {passed} passed. Fix the ✗ lines, then run `python app.py doctor` again."
        )
    else:
        lines.append(f"All {passed} checks passed.")
    return "\n".join(lines)


CredentialFactory = Callable[[Settings], AsyncTokenCredential]
BotTokenSource = Callable[[Settings], Awaitable[str]]


@dataclass
class Doctor:
    """Runs every check against the deployment `env` describes. The two token sources can be replaced in tests."""

    env: Mapping[str, str]
    credential_factory: CredentialFactory = field(default=lambda settings: build_credential(settings.graph))
    bot_token: BotTokenSource | None = None
    findings: list[Finding] = field(default_factory=list)

    async def diagnose(self) -> Report:
        try:
            settings = Settings.from_env(self.env)
        except SettingsError as error:
            self.findings.append(Finding.failed("settings", f"Settings are incomplete: {error}"))
            return Report(tuple(self.findings))
        self.findings.append(Finding.ok("settings", f"Settings are complete ({_describe(settings)})."))
        registered = self._bot_registration(settings)
        await self._bot_framework_token(settings, registered)
        credential = self._credential(settings)
        try:
            token_ok = await self._graph_token(settings, credential)
            await self._graph(settings, token_ok, credential)
        finally:
            if credential is not None:
                await _close(credential)
        await self._database(settings)
        return Report(tuple(self.findings))

    # --- the bot registration ---------------------------------------------------------------------------------

    def _bot_registration(self, settings: Settings) -> bool:
        connection = {
            key[len(BOT_CONNECTION_PREFIX) :]: value.strip()
            for key, value in settings.bot_connection_env.items()
            if key.startswith(BOT_CONNECTION_PREFIX) and value.strip()
        }
        client_id, tenant_id = settings.bot_client_id, settings.bot_tenant_id
        if not client_id:
            if tenant_id:
                self._fail(
                    "bot_registration",
                    f"A bot tenant id is set ({BOT_CONNECTION_PREFIX}TENANTID) but no bot app id "
                    f"({BOT_CONNECTION_PREFIX}CLIENTID): set both, or neither for the local sandbox.",
                )
            elif settings.host in LOOPBACK_HOSTS:
                self._ok(
                    "bot_registration",
                    f"No bot registration: /api/messages is unauthenticated and listens on {settings.host} only "
                    "(the local sandbox; never for a real tenant).",
                )
            else:  # Settings refuse this already; kept so the doctor never reports it as fine.
                self._fail("bot_registration", f"No bot app id, yet listening on {settings.host}: unauthenticated.")
            return False
        if not tenant_id:
            self._fail(
                "bot_registration",
                f"The bot app id is set but not its tenant ({BOT_CONNECTION_PREFIX}TENANTID): a single-tenant "
                "Azure Bot needs both.",
            )
            return False
        auth_type = connection.get("AUTHTYPE", "ClientSecret")
        problem = _bot_credential_problem(auth_type, connection)
        if problem:
            self._fail("bot_registration", f"The bot registration {client_id} has no usable credential: {problem}.")
            return False
        self._ok(
            "bot_registration",
            f"Bot registration {client_id} in tenant {tenant_id} ({auth_type}: {BOT_AUTH_TYPES[auth_type][1]}); "
            f"incoming requests need a Bot Framework token; listening on {settings.host}:{settings.port}.",
        )
        return True

    async def _bot_framework_token(self, settings: Settings, registered: bool) -> None:
        if settings.anonymous:
            self._not_applicable("bot_token", "Bot Framework token: not applicable (no bot registration).")
            return
        if not registered:
            self._not_applicable("bot_token", "Bot Framework token: not tried (the registration is incomplete).")
            return
        source = self.bot_token or _bot_framework_token
        try:
            await asyncio.wait_for(source(settings), TOKEN_TIMEOUT_SECONDS)
        except Exception as error:
            logger.debug("bot token failed", exc_info=True)
            self._fail(
                "bot_token",
                f"The bot registration could not obtain a Bot Framework token ({_reason(error)}): replies to Teams "
                "would fail. Check the app id, tenant and secret or certificate of the Azure Bot.",
            )
            return
        self._ok("bot_token", "The bot registration obtains a Bot Framework token (replies to Teams can be sent).")

    # --- Graph ------------------------------------------------------------------------------------------------

    def _credential(self, settings: Settings) -> AsyncTokenCredential | None:
        """The deployment's Graph credential (None in the sandbox, or when it cannot be built: reported then)."""
        if settings.graph.mode in (GraphMode.SANDBOX, GraphMode.ANONYMOUS):
            return None
        try:
            return self.credential_factory(settings)
        except Exception as error:
            self._fail(
                "graph_token", f"The Graph credential ({settings.graph.mode.value}) cannot be built: {_reason(error)}."
            )
            return None

    async def _graph_token(self, settings: Settings, credential: AsyncTokenCredential | None) -> bool:
        """Whether Graph calls can carry a token (always, in the sandbox); reports the permissions it grants."""
        mode = settings.graph.mode
        if mode in (GraphMode.SANDBOX, GraphMode.ANONYMOUS):
            where = "the built-in sandbox tenant" if mode is GraphMode.SANDBOX else "a stand-alone sandbox"
            self._not_applicable("graph_token", f"Graph credential: not applicable ({where} needs no sign-in).")
            self._not_applicable(
                "graph_write",
                f"Permission to create and delete passes ({WRITE_PERMISSION} or {BROAD_WRITE_PERMISSION}): "
                "not applicable.",
            )
            return True
        if credential is None:
            return False  # its ✗ line is written
        try:
            token = await asyncio.wait_for(credential.get_token(settings.graph.scope), TOKEN_TIMEOUT_SECONDS)
        except Exception as error:
            logger.debug("graph token failed", exc_info=True)
            self._fail(
                "graph_token",
                f"The Graph credential ({mode.value}) obtains no token for {settings.graph.scope}: {_reason(error)}.",
            )
            return False
        roles = token_roles(token.token)
        minutes = max(0, round((token.expires_on - datetime.now(UTC).timestamp()) / 60))
        granted = ", ".join(sorted(roles)) if roles else "no application permissions"
        self._ok(
            "graph_token",
            f"The Graph credential ({mode.value}) obtains a token for {settings.graph.scope} "
            f"(valid {minutes} more minutes; it grants: {granted}).",
        )
        if WRITE_PERMISSION in roles:
            self._ok(
                "graph_write",
                f"The token grants {WRITE_PERMISSION}: the bot can create and delete passes (least privilege).",
            )
        elif BROAD_WRITE_PERMISSION in roles:
            self._ok(
                "graph_write",
                f"The token grants {BROAD_WRITE_PERMISSION}: the bot can create and delete passes. It also lets the "
                f"app change every other sign-in method; {WRITE_PERMISSION} is enough.",
            )
        else:
            self._fail(
                "graph_write",
                f"The token grants neither {WRITE_PERMISSION} nor {BROAD_WRITE_PERMISSION}: the bot cannot create or "
                f"delete passes. Grant {WRITE_PERMISSION} as an application permission and give admin consent.",
            )
        return True

    async def _graph(self, settings: Settings, token_ok: bool, credential: AsyncTokenCredential | None) -> None:
        if not token_ok:  # no call can succeed without a token
            for check in _TITLES:
                self._not_applicable(check, f"{_TITLES[check]}: not checked (no Graph token).")
            return
        sandbox = None
        base_url = settings.graph.base_url
        if settings.sandbox:
            from bot.sandbox.server import start_sandbox  # a real deployment never loads the emulator
            from bot.sandbox.tenant import load_tenant

            assert settings.sandbox_tenant_file is not None
            sandbox = await start_sandbox(await asyncio.to_thread(load_tenant, settings.sandbox_tenant_file))
            base_url = sandbox.base_url
        client, http_client = build_graph_client(settings.graph, base_url, credential=credential)
        try:
            await self._graph_reads(settings, GraphGateway(client, SystemClock()))
        finally:
            await http_client.aclose()
            if sandbox is not None:
                await sandbox.close()

    async def _graph_reads(self, settings: Settings, graph: GraphGateway) -> None:
        limit = settings.graph.timeout_seconds + 5
        found_user = await self._read("graph_users", USERS_PERMISSION, graph.any_user_id(), limit)
        user_id = found_user if isinstance(found_user, str) else None
        if user_id is not None:
            self._ok("graph_users", f"Users can be read ({USERS_PERMISSION}).")
        elif found_user is None:
            self._fail("graph_users", "Listing users answered no user at all: is this the right tenant?")
        if user_id is None:
            for check in ("graph_membership", *_ROLE_CHECKS):
                self._not_applicable(check, f"{_TITLES[check]}: not checked (no user to check with).")
        else:
            groups = [settings.operator_group_id]
            if _answered(
                await self._read("graph_membership", MEMBERSHIP_PERMISSION, graph.member_groups(user_id, groups), limit)
            ):
                self._ok(
                    "graph_membership",
                    f"Group membership can be checked, nested groups included ({MEMBERSHIP_PERMISSION}).",
                )
            await self._role_reads(graph, user_id, limit)
        policy = await self._read("graph_policy", POLICY_PERMISSION, graph.tap_policy(), limit)
        if isinstance(policy, TapPolicy):
            self._ok("graph_policy", f"The Temporary Access Pass policy can be read ({POLICY_PERMISSION}).")
            self._policy(policy)
        else:
            self._not_applicable("tap_policy", f"{_TITLES['tap_policy']}: unknown (the policy cannot be read).")
        if user_id is None:
            self._not_applicable("graph_passes", f"{_TITLES['graph_passes']}: not checked (no user to check with).")
        elif _answered(await self._read("graph_passes", PASS_READ_PERMISSION, graph.current_pass(user_id), limit)):
            self._ok("graph_passes", f"Users' Temporary Access Passes can be listed ({PASS_READ_PERMISSION}).")
        if user_id is None:
            self._not_applicable("graph_methods", f"{_TITLES['graph_methods']}: not checked (no user to check with).")
        elif _answered(await self._read("graph_methods", METHODS_PERMISSION, graph.sign_in_methods(user_id), limit)):
            self._ok("graph_methods", f"A new hire's sign-in methods can be listed ({METHODS_PERMISSION}).")
        await self._groups(settings, graph, limit)

    async def _role_reads(self, graph: GraphGateway, user_id: str, limit: float) -> None:
        """Each read behind "holds no directory role by any path", so a refusal names the permission it lacks."""
        reads: list[tuple[str, str, Awaitable[object], str]] = [
            (
                "graph_roles",
                ROLES_PERMISSION,
                graph.active_role_grants([user_id]),
                f"Directory role assignments can be read ({ROLES_PERMISSION}).",
            ),
            (
                "graph_role_eligibility",
                ROLES_PERMISSION,
                graph.eligible_role_grants(user_id),
                f"Roles eligible in PIM can be read ({ROLES_PERMISSION}).",
            ),
            (
                "graph_role_groups",
                MEMBERSHIP_PERMISSION,
                graph.role_assignable_groups(user_id),
                f"A user's role-assignable groups can be listed ({MEMBERSHIP_PERMISSION}).",
            ),
            (
                "graph_pim_groups",
                PIM_GROUPS_PERMISSION,
                graph.group_eligibilities(user_id),
                f"Group memberships eligible in PIM for Groups can be read ({PIM_GROUPS_PERMISSION}).",
            ),
        ]
        for check, permission, work, sentence in reads:
            if _answered(await self._read(check, permission, work, limit)):
                self._ok(check, sentence)

    def _policy(self, policy: TapPolicy) -> None:
        if not policy.enabled:
            self._fail(
                "tap_policy",
                "The tenant's Temporary Access Pass policy is disabled: no pass can be issued. Enable it in the "
                "Entra admin center (Protection → Authentication methods → Policies → Temporary Access Pass).",
            )
            return
        everyone = any(target.target_id == ALL_USERS for target in policy.include_targets)
        scope = "all users" if everyone else f"{len(policy.include_targets)} target(s)"
        if policy.exclude_targets:
            scope += f" except {len(policy.exclude_targets)} excluded target(s)"
        self._ok(
            "tap_policy",
            f"The Temporary Access Pass policy is enabled: lifetimes {policy.minimum_lifetime_minutes}–"
            f"{policy.maximum_lifetime_minutes} minutes (default {policy.default_lifetime_minutes}), one-time use "
            f"{'forced' if policy.one_time_forced else 'optional'}, for {scope}.",
        )

    async def _groups(self, settings: Settings, graph: GraphGateway, limit: float) -> None:
        operator = await self._read(
            "operator_group", MEMBERSHIP_PERMISSION, _found(graph, settings.operator_group_id), limit
        )
        if operator is _MISSING:
            self._fail(
                "operator_group",
                f"The operator group {settings.operator_group_id} does not exist in the tenant "
                "(TAPBOT_OPERATOR_GROUP_ID): nobody could issue a pass.",
            )
        elif isinstance(operator, str):
            self._ok("operator_group", f"The operator group exists: {operator} ({settings.operator_group_id}).")
        if not settings.protected_group_ids:
            self._not_applicable(
                "protected_groups",
                "No protected groups are configured (TAPBOT_PROTECTED_GROUP_IDS): break-glass and service accounts "
                "are refused only if they hold a directory role.",
            )
            return
        names: list[str] = []
        missing: list[str] = []
        for group_id in sorted(settings.protected_group_ids):
            found = await self._read("protected_groups", MEMBERSHIP_PERMISSION, _found(graph, group_id), limit)
            if isinstance(found, _Failed):
                return
            if found is _MISSING:
                missing.append(group_id)
            else:
                names.append(f"{found}")
        if missing:
            self._fail(
                "protected_groups",
                f"Protected group(s) {', '.join(missing)} do not exist in the tenant (TAPBOT_PROTECTED_GROUP_IDS): "
                "their members would not be protected.",
            )
        else:
            self._ok("protected_groups", f"The protected groups exist: {', '.join(names)}.")

    async def _read(self, check: str, permission: str, work: Awaitable[T], limit: float) -> T | _Failed:
        """Runs one read; a failure becomes a ✗ line naming the permission behind it."""
        try:
            return await asyncio.wait_for(work, limit)
        except GraphRejected as error:
            reference = f" (request id {error.request_id})" if error.request_id else ""
            self._fail(
                check,
                f"{_TITLES[check]}: Microsoft Graph refused{reference}. Grant the application permission "
                f"{permission} and give admin consent.",
            )
        except (GraphUnavailable, TimeoutError) as error:
            why = error.user_message if isinstance(error, TapError) else f"no answer within {limit:g} s"
            self._fail(check, f"{_TITLES[check]}: Microsoft Graph did not answer ({why}).")
        except TapError as error:
            self._fail(check, f"{_TITLES[check]}: {error.user_message}")
        except Exception as error:  # e.g. the credential failing inside the call
            logger.debug("%s failed", check, exc_info=True)
            self._fail(check, f"{_TITLES[check]}: failed ({_reason(error)}).")
        return _FAILED

    # --- the database -----------------------------------------------------------------------------------------

    async def _database(self, settings: Settings) -> None:
        url = make_url(settings.database_url)
        shown = url.render_as_string(hide_password=True)
        if not await asyncio.to_thread(_database_file_exists, settings.database_url):
            self._fail(
                "database",
                f"The database file {url.database} does not exist (the app creates it at its first start).",
            )
            self._not_applicable("schema", "Database schema: not checked (no database).")
            return
        engine = create_engine(settings.database)  # the app's own sign-in (password or Entra token) and TLS
        try:
            tables = await asyncio.wait_for(_tables(engine), DATABASE_TIMEOUT_SECONDS)
        except Exception as error:
            logger.debug("database unreachable", exc_info=True)
            self._fail("database", f"The database at {shown} cannot be reached: {_reason(error)}.")
            self._not_applicable("schema", "Database schema: not checked (no database).")
            return
        finally:
            await engine.dispose()
        self._ok("database", f"The database answers ({shown}).")
        self._schema(tables)

    def _schema(self, tables: dict[str, set[str]]) -> None:
        missing_tables = sorted(name for name in Base.metadata.tables if name not in tables)
        missing_columns = sorted(
            f"{name}.{column.name}"
            for name, table in Base.metadata.tables.items()
            if name in tables
            for column in table.columns
            if column.name not in tables[name]
        )
        if missing_tables == sorted(Base.metadata.tables):
            self._fail(
                "schema",
                "The database holds none of tapbot's tables yet: start the app once (it creates them), then run "
                "the doctor again.",
            )
        elif missing_tables or missing_columns:
            missing = ", ".join([*missing_tables, *missing_columns])
            self._fail(
                "schema",
                f"The database schema is older than this version (missing: {missing}): start this version once "
                "(it migrates the schema at start), then run the doctor again.",
            )
        else:
            self._ok("schema", f"The database schema is present ({len(Base.metadata.tables)} tables).")

    # --- helpers ----------------------------------------------------------------------------------------------

    def _ok(self, check: str, sentence: str) -> None:
        self.findings.append(Finding.ok(check, sentence))

    def _fail(self, check: str, sentence: str) -> None:
        self.findings.append(Finding.failed(check, sentence))

    def _not_applicable(self, check: str, sentence: str) -> None:
        self.findings.append(Finding.not_applicable(check, sentence))


_TITLES = {
    "graph_users": f"Reading users ({USERS_PERMISSION})",
    "graph_membership": f"Checking group membership ({MEMBERSHIP_PERMISSION})",
    "graph_roles": f"Reading directory role assignments ({ROLES_PERMISSION})",
    "graph_role_eligibility": f"Reading roles eligible in PIM ({ROLES_PERMISSION})",
    "graph_role_groups": f"Listing a user's role-assignable groups ({MEMBERSHIP_PERMISSION})",
    "graph_pim_groups": f"Reading group memberships eligible in PIM for Groups ({PIM_GROUPS_PERMISSION})",
    "graph_policy": f"Reading the Temporary Access Pass policy ({POLICY_PERMISSION})",
    "tap_policy": "Temporary Access Pass policy",
    "graph_passes": f"Listing a user's Temporary Access Passes ({PASS_READ_PERMISSION})",
    "graph_methods": f"Listing a user's sign-in methods ({METHODS_PERMISSION})",
    "operator_group": f"Reading the operator group ({MEMBERSHIP_PERMISSION})",
    "protected_groups": f"Reading the protected groups ({MEMBERSHIP_PERMISSION})",
}


_ROLE_CHECKS = ("graph_roles", "graph_role_eligibility", "graph_role_groups", "graph_pim_groups")


class _Failed:
    """A read that failed; its ✗ line is already written."""


class _Missing:
    """A group the tenant does not have."""


_FAILED = _Failed()
_MISSING = _Missing()


def _database_file_exists(database_url: str) -> bool:
    """False only for an SQLite file that is not there (connecting would create an empty one)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return True
    return Path(str(url.database)).is_file()


def _answered(result: object) -> bool:
    """Whether a read answered at all, whatever it answered (an empty answer still proves the permission)."""
    return not isinstance(result, _Failed)


async def _found(graph: GraphGateway, group_id: str) -> str | _Missing:
    name = await graph.find_group(group_id)
    return _MISSING if name is None else name


async def _tables(engine: Any) -> dict[str, set[str]]:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
        return await connection.run_sync(
            lambda sync: {
                name: {column["name"] for column in inspect(sync).get_columns(name)}
                for name in inspect(sync).get_table_names()
            }
        )


def _bot_credential_problem(auth_type: str, connection: dict[str, str]) -> str | None:
    if auth_type not in BOT_AUTH_TYPES:
        spelled = next((known for known in BOT_AUTH_TYPES if known.lower() == auth_type.lower()), None)
        if spelled:
            return f"write {BOT_CONNECTION_PREFIX}AUTHTYPE={spelled} exactly (the Agents SDK compares it case by case)"
        return (
            f"{BOT_CONNECTION_PREFIX}AUTHTYPE={auth_type} is not an auth type of the Agents SDK "
            f"(one of {', '.join(BOT_AUTH_TYPES)})"
        )
    for needed in BOT_AUTH_TYPES[auth_type][0]:
        value = connection.get(needed)
        if not value:
            return f"AUTHTYPE={auth_type} needs {BOT_CONNECTION_PREFIX}{needed}"
        if needed in _BOT_AUTH_FILES and not Path(value).is_file():
            return f"{BOT_CONNECTION_PREFIX}{needed} must name a file that exists (got {value})"
    return None


async def _bot_framework_token(settings: Settings) -> str:
    """A Bot Framework token through the Agents SDK's own connection settings: the registration works."""
    from microsoft_agents.activity import load_configuration_from_env
    from microsoft_agents.authentication.msal import MsalConnectionManager

    connections = MsalConnectionManager(**load_configuration_from_env(dict(settings.bot_connection_env)))
    provider = connections.get_default_connection()
    return await provider.get_access_token(BOT_FRAMEWORK_RESOURCE, [f"{BOT_FRAMEWORK_RESOURCE}/.default"])


async def _close(credential: AsyncTokenCredential) -> None:
    close = getattr(credential, "close", None)
    if close is not None:
        try:
            await close()
        except Exception:
            logger.debug("closing the credential failed", exc_info=True)


def token_roles(token: str) -> frozenset[str]:
    """The `roles` claim of an access token (its application permissions). Not verified: only for reporting."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return frozenset()
    roles = claims.get("roles") if isinstance(claims, dict) else None
    return frozenset(role for role in roles if isinstance(role, str)) if isinstance(roles, list) else frozenset()


def _describe(settings: Settings) -> str:
    mode = settings.graph.mode
    if mode is GraphMode.SANDBOX:
        graph = f"Graph: the sandbox tenant from {settings.sandbox_tenant_file}"
    elif mode is GraphMode.ANONYMOUS:
        graph = f"Graph: a stand-alone sandbox at {settings.graph.base_url}"
    else:
        graph = f"Graph: tenant {settings.graph.tenant_id} at {settings.graph.base_url} with {mode.value}"
    database = make_url(settings.database_url).render_as_string(hide_password=True)
    return f"{graph}; database {database}"


def _reason(error: BaseException) -> str:
    """An error as a short phrase: its class and the first line of its message (never a token or secret)."""
    if isinstance(error, TimeoutError):
        return "no answer in time"
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {first_line[:300]}" if first_line else type(error).__name__


async def diagnose(env: Mapping[str, str], **options: Any) -> Report:
    return await Doctor(env, **options).diagnose()
