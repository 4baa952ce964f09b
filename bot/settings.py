"""Every setting the bot reads, built once from the environment at start.

A missing or malformed setting stops the start with one sentence naming the variable. Nothing else in the code
reads the environment.
"""

from __future__ import annotations

import enum
import json
import os
import re
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.adapters.database import DatabaseSettings, DatabaseSettingsError, database_settings
from bot.domain.reasons import NO_REASON_RULES, ReasonRules
from bot.domain.verification import DEFAULT_VERIFICATION_MINUTES, VerificationMethod, VerificationRules
from bot.logging_setup import LogFormat

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEMO_TENANT_FILE = PROJECT_DIR / "bot" / "sandbox" / "demo_tenant.json"
DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///{PROJECT_DIR / 'var' / 'tapbot.db'}"
BOT_CONNECTION_PREFIX = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Where Teams keeps attached files: SharePoint and OneDrive in the commercial and government clouds.
DEFAULT_DOWNLOAD_HOSTS = ("*.sharepoint.com", "*.sharepoint.us", "*.sharepoint-mil.us")
# Where Teams' Bot Connector answers (the activities' serviceUrl): commercial, GCC, GCC High, DoD.
DEFAULT_CONNECTOR_HOSTS = (
    "smba.trafficmanager.net",
    "smba.infra.gcc.teams.microsoft.com",
    "smba.infra.gov.teams.microsoft.us",
    "smba.infra.dod.teams.microsoft.us",
)
DEFAULT_TOKEN_SERVICE_URL = "https://api.botframework.com"
# The sandbox's bot has no registration; this app id stands for it wherever SSO needs one (state's msAppId, the App
# ID URI api://botid-…). Same value as bot/sandbox/identity.py's (tests/test_settings.py checks it): importing it from
# there would load the emulator, which imports this module, in every deployment.
SANDBOX_BOT_APP_ID = "5a4db0b7-7e57-4f0b-9a47-0c0ffee0b07a"


class SettingsError(ValueError):
    """A setting is missing or wrong; the message names the variable and what to do."""


class GraphWrites(enum.StrEnum):
    """Whose rights create and delete passes (TAPBOT_GRAPH_WRITES); reads are app-only either way."""

    APPLICATION = "application"  # the bot's own application permission
    DELEGATED = "delegated"  # the acting person's delegated token, through the bot's OAuth connection (issue 14)


class GraphMode(enum.StrEnum):
    SANDBOX = "sandbox"  # in-process emulation of the Graph endpoints, seeded from a tenant file
    ANONYMOUS = "anonymous"  # no credential: only for a stand-alone sandbox on loopback
    CERTIFICATE = "certificate"
    MANAGED_IDENTITY = "managed_identity"
    CLIENT_SECRET = "client_secret"


@dataclass(frozen=True)
class GraphSettings:
    mode: GraphMode
    base_url: str = "https://graph.microsoft.com/v1.0"
    authority_host: str = "login.microsoftonline.com"
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    certificate_path: Path | None = None
    certificate_password: str | None = field(default=None, repr=False)
    timeout_seconds: float = 20.0

    @property
    def scope(self) -> str:
        host = re.match(r"^(https?://[^/]+)", self.base_url)
        return f"{host.group(1) if host else 'https://graph.microsoft.com'}/.default"


@dataclass(frozen=True)
class OnboardingSettings:
    needs_approval: bool
    lifetime_minutes: int | None  # None: the tenant policy's default
    one_time: bool
    first_day_hour: int
    tenant_timezone: ZoneInfo


@dataclass(frozen=True)
class ApprovalSettings:
    lifetime_threshold_minutes: int | None
    bulk_row_threshold: int | None
    request_hours: float


@dataclass(frozen=True)
class VerifiedIdSettings:
    """Microsoft Entra Verified ID with Face Check (TAPBOT_VERIFIED_ID_*)."""

    authority: str | None = None  # the tenant's Verified ID authority (DID); None in the sandbox: the emulator's
    service_url: str | None = None  # the Request Service's root; None: the built-in sandbox's
    callback_base_url: str | None = None  # the bot's public https address; None in the sandbox: its own socket
    threshold: int = 70  # Face Check's matchConfidenceThreshold, 50..100


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    database_url: str
    database: DatabaseSettings  # the URL again, with how to sign in and check the server (TLS)
    telemetry_connection_string: str | None = field(repr=False)  # Application Insights; None: no telemetry
    graph: GraphSettings
    bot_client_id: str | None
    bot_tenant_id: str | None
    bot_connection_env: Mapping[str, str] = field(repr=False)
    allowed_tenant_ids: frozenset[str]
    operator_group_id: str
    protected_group_ids: frozenset[str]
    sandbox_tenant_file: Path | None
    default_timezone: ZoneInfo
    default_start_hour: int
    housekeeping_seconds: float
    log_level: str
    log_format: LogFormat
    onboarding: OnboardingSettings
    approvals: ApprovalSettings
    download_hosts: tuple[str, ...]
    bulk_max_bytes: int
    bulk_max_rows: int
    replica_id: str
    lease_seconds: float
    connector_hosts: tuple[str, ...] = DEFAULT_CONNECTOR_HOSTS
    health_port: int | None = None  # /healthz and /readyz on their own port, none on PORT
    directory_cache_seconds: float = 30.0  # TAP policy and positive operator checks reused this long (0: never)
    revoke_after_registration: bool = True  # TAPBOT_REVOKE_AFTER_REGISTRATION (follow-through, issue 12 item 4)
    reasons: ReasonRules = NO_REASON_RULES  # TAPBOT_REASON_REQUIRED, TAPBOT_TICKET_PATTERN, TAPBOT_TICKET_EXAMPLE
    verified_id: VerifiedIdSettings = field(default_factory=VerifiedIdSettings)  # TAPBOT_VERIFIED_ID_*
    # TAPBOT_VERIFICATION, TAPBOT_VERIFY_ONBOARDING, TAPBOT_VERIFICATION_MINUTES, TAPBOT_VERIFICATION_FALLBACK_GROUP
    verification: VerificationRules = field(default_factory=VerificationRules)
    # TAPBOT_VELOCITY_LIMIT: passes one operator may issue in a rolling hour before an alert is raised and further
    # single passes need a second operator (issue 12 item 3).
    velocity_limit: int = 20
    graph_writes: GraphWrites = GraphWrites.APPLICATION  # TAPBOT_GRAPH_WRITES
    oauth_connection: str | None = None  # TAPBOT_OAUTH_CONNECTION: the Azure Bot's OAuth connection (delegated)
    sso_resource: str = f"api://botid-{SANDBOX_BOT_APP_ID}"  # TAPBOT_SSO_RESOURCE: the App ID URI Teams' SSO uses
    token_service_url: str = DEFAULT_TOKEN_SERVICE_URL  # TAPBOT_TOKEN_SERVICE_URL: the Bot Framework token service

    @property
    def delegated_writes(self) -> bool:
        return self.graph_writes is GraphWrites.DELEGATED

    @property
    def sso_app_id(self) -> str:
        """The app id SSO names (msAppId in the sign-in state): the bot's, or the sandbox's stand-in."""
        return self.bot_client_id or SANDBOX_BOT_APP_ID

    @property
    def anonymous(self) -> bool:
        """No bot registration: unauthenticated local mode, only ever for the sandbox on loopback."""
        return not self.bot_client_id

    @property
    def sandbox(self) -> bool:
        return self.graph.mode is GraphMode.SANDBOX

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        reader = _Reader(env)
        graph = _graph_settings(reader)
        bot_client_id = reader.optional(BOT_CONNECTION_PREFIX + "CLIENTID")
        bot_tenant_id = reader.optional(BOT_CONNECTION_PREFIX + "TENANTID")
        sandbox_file: Path | None = None
        sandbox_defaults: dict[str, object] = {}
        if graph.mode is GraphMode.SANDBOX:
            sandbox_file = Path(reader.optional("TAPBOT_SANDBOX_TENANT") or DEMO_TENANT_FILE)
            sandbox_defaults = _sandbox_defaults(sandbox_file)
        default_host = "0.0.0.0" if bot_client_id else "127.0.0.1"  # noqa: S104 - behind a registration only
        host = reader.optional("TAPBOT_HOST") or default_host
        if not bot_client_id and host not in LOOPBACK_HOSTS:
            raise SettingsError(
                f"TAPBOT_HOST={host} is not a loopback address, but no bot app id is configured "
                f"({BOT_CONNECTION_PREFIX}CLIENTID): unauthenticated mode only ever listens on 127.0.0.1."
            )
        if not bot_client_id and graph.mode is not GraphMode.SANDBOX and graph.mode is not GraphMode.ANONYMOUS:
            raise SettingsError(
                f"A real tenant is configured (TAPBOT_GRAPH_AUTH={graph.mode.value}) but no bot app id "
                f"({BOT_CONNECTION_PREFIX}CLIENTID): refusing to serve a real tenant without authentication."
            )
        tenants = reader.csv("TAPBOT_ALLOWED_TENANT_IDS") or _strings(sandbox_defaults.get("tenantId"))
        if not tenants and bot_tenant_id:
            tenants = [bot_tenant_id]
        if not tenants and graph.tenant_id:
            tenants = [graph.tenant_id]
        if not tenants:
            raise SettingsError(
                "Set TAPBOT_ALLOWED_TENANT_IDS to your tenant id: activities from any other tenant are refused."
            )
        operator_group = reader.optional("TAPBOT_OPERATOR_GROUP_ID") or _string(sandbox_defaults.get("operatorGroupId"))
        if not operator_group:
            raise SettingsError(
                "Set TAPBOT_OPERATOR_GROUP_ID to the object id of the Entra group whose members may issue passes."
            )
        delegated = _delegated_settings(
            reader, bot_client_id or SANDBOX_BOT_APP_ID, real=graph.mode not in (GraphMode.SANDBOX, GraphMode.ANONYMOUS)
        )
        protected = reader.csv("TAPBOT_PROTECTED_GROUP_IDS")
        if not protected and "TAPBOT_PROTECTED_GROUP_IDS" not in env:
            protected = _strings(sandbox_defaults.get("protectedGroupIds"))
        return cls(
            host=host,
            port=reader.integer("PORT", 3978, minimum=0, maximum=65535),
            database_url=reader.optional("TAPBOT_DATABASE_URL") or DEFAULT_DATABASE_URL,
            database=_database_settings(reader),
            telemetry_connection_string=reader.optional("APPLICATIONINSIGHTS_CONNECTION_STRING"),
            graph=graph,
            bot_client_id=bot_client_id,
            bot_tenant_id=bot_tenant_id,
            bot_connection_env={
                key: value for key, value in env.items() if key.startswith(("CONNECTIONS__", "CONNECTIONSMAP__"))
            },
            allowed_tenant_ids=frozenset(tenant.lower() for tenant in tenants),
            operator_group_id=operator_group,
            protected_group_ids=frozenset(protected),
            sandbox_tenant_file=sandbox_file,
            default_timezone=reader.timezone("TAPBOT_DEFAULT_TIMEZONE", "UTC"),
            default_start_hour=reader.integer("TAPBOT_DEFAULT_START_HOUR", 8, minimum=0, maximum=23),
            housekeeping_seconds=reader.number("TAPBOT_HOUSEKEEPING_SECONDS", 30.0, minimum=0.05),
            log_level=(reader.optional("TAPBOT_LOG_LEVEL") or "INFO").upper(),
            # JSON lines for a log collector wherever a bot registration exists; readable text in the sandbox.
            log_format=_log_format(reader, LogFormat.JSON if bot_client_id else LogFormat.TEXT),
            onboarding=OnboardingSettings(
                needs_approval=reader.boolean("TAPBOT_ONBOARDING_NEEDS_APPROVAL", True),
                lifetime_minutes=reader.optional_integer(
                    "TAPBOT_ONBOARDING_LIFETIME_MINUTES", minimum=10, maximum=43200
                ),
                one_time=reader.boolean("TAPBOT_ONBOARDING_ONE_TIME", False),
                first_day_hour=reader.integer("TAPBOT_FIRST_DAY_HOUR", 8, minimum=0, maximum=23),
                tenant_timezone=reader.timezone(
                    "TAPBOT_TENANT_TIMEZONE", reader.optional("TAPBOT_DEFAULT_TIMEZONE") or "UTC"
                ),
            ),
            approvals=ApprovalSettings(
                lifetime_threshold_minutes=reader.optional_integer(
                    "TAPBOT_APPROVAL_LIFETIME_THRESHOLD_MINUTES", minimum=10, maximum=43200
                ),
                bulk_row_threshold=reader.optional_integer("TAPBOT_APPROVAL_BULK_ROWS", minimum=1, maximum=1_000_000),
                request_hours=reader.number("TAPBOT_APPROVAL_REQUEST_HOURS", 24.0, minimum=0.01),
            ),
            download_hosts=tuple(reader.csv("TAPBOT_DOWNLOAD_HOSTS") or DEFAULT_DOWNLOAD_HOSTS),
            bulk_max_bytes=reader.integer(
                "TAPBOT_BULK_MAX_BYTES", 5 * 1024 * 1024, minimum=1024, maximum=200 * 1024**2
            ),
            bulk_max_rows=reader.integer("TAPBOT_BULK_MAX_ROWS", 5000, minimum=1, maximum=100_000),
            replica_id=reader.optional("TAPBOT_REPLICA_ID") or _replica_name(),
            lease_seconds=reader.number("TAPBOT_LEASE_SECONDS", 30.0, minimum=1.0),
            connector_hosts=_connector_hosts(reader),
            health_port=_health_port(reader),
            directory_cache_seconds=_directory_cache_seconds(reader),
            revoke_after_registration=reader.boolean("TAPBOT_REVOKE_AFTER_REGISTRATION", True),
            reasons=_reason_rules(reader),
            verified_id=_verified_id_settings(reader, graph.mode),
            verification=_verification_rules(reader, env),
            velocity_limit=reader.integer("TAPBOT_VELOCITY_LIMIT", 20, minimum=1, maximum=100_000),
            graph_writes=delegated[0],
            oauth_connection=delegated[1],
            sso_resource=delegated[2],
            token_service_url=delegated[3],
        )


def _delegated_settings(reader: _Reader, app_id: str, *, real: bool) -> tuple[GraphWrites, str | None, str, str]:
    """TAPBOT_GRAPH_WRITES and what delegated writes need (issue 14): writes, connection, App ID URI, token service."""
    raw = (reader.optional("TAPBOT_GRAPH_WRITES") or GraphWrites.APPLICATION.value).lower()
    try:
        writes = GraphWrites(raw)
    except ValueError:
        raise SettingsError(f"TAPBOT_GRAPH_WRITES={raw} is not one of: application, delegated.") from None
    connection = reader.optional("TAPBOT_OAUTH_CONNECTION")
    if connection is not None and (len(connection) > 200 or not connection.isprintable()):
        raise SettingsError(
            "TAPBOT_OAUTH_CONNECTION must be the name of the Azure Bot's OAuth connection setting, as shown under "
            "Configuration, OAuth Connection Settings (printable, at most 200 characters)."
        )
    if writes is GraphWrites.DELEGATED and connection is None:
        raise SettingsError(
            "Set TAPBOT_OAUTH_CONNECTION to the name of the Azure Bot's OAuth connection that gives tapbot a Graph "
            "token for the technician: TAPBOT_GRAPH_WRITES=delegated needs it."
        )
    resource = reader.optional("TAPBOT_SSO_RESOURCE") or f"api://botid-{app_id}"
    if not re.fullmatch(r"(api|https)://[^\s/?#]+(/[^\s?#]*)?", resource):
        raise SettingsError(
            f"TAPBOT_SSO_RESOURCE={resource} is not an App ID URI such as api://botid-{app_id} (the Application ID "
            "URI under Expose an API in the bot's app registration)."
        )
    service = _https_url(reader, "TAPBOT_TOKEN_SERVICE_URL", https=real) or DEFAULT_TOKEN_SERVICE_URL
    return writes, connection, resource.rstrip("/"), service


def _replica_name() -> str:
    """Unique per process: leases tell replicas apart by it."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _graph_settings(reader: _Reader) -> GraphSettings:
    raw_mode = (reader.optional("TAPBOT_GRAPH_AUTH") or GraphMode.SANDBOX.value).lower()
    try:
        mode = GraphMode(raw_mode)
    except ValueError:
        choices = ", ".join(mode.value for mode in GraphMode)
        raise SettingsError(f"TAPBOT_GRAPH_AUTH={raw_mode} is not one of: {choices}.") from None
    base_url = (reader.optional("TAPBOT_GRAPH_BASE_URL") or "https://graph.microsoft.com/v1.0").rstrip("/")
    common = {
        "mode": mode,
        "base_url": base_url,
        "authority_host": reader.optional("TAPBOT_GRAPH_AUTHORITY_HOST") or "login.microsoftonline.com",
        "timeout_seconds": reader.number("TAPBOT_GRAPH_TIMEOUT_SECONDS", 20.0, minimum=1.0),
    }
    if mode is GraphMode.SANDBOX:
        return GraphSettings(**common)  # type: ignore[arg-type]
    if mode is GraphMode.ANONYMOUS:
        host = re.match(r"^https?://(\[[^\]]+\]|[^/:]+)", base_url)
        if not host or host.group(1).strip("[]") not in LOOPBACK_HOSTS:
            raise SettingsError(
                "TAPBOT_GRAPH_AUTH=anonymous is only for a stand-alone sandbox on loopback; "
                f"TAPBOT_GRAPH_BASE_URL={base_url} is not on 127.0.0.1."
            )
        return GraphSettings(**common)  # type: ignore[arg-type]
    if not base_url.startswith("https://"):
        raise SettingsError(f"TAPBOT_GRAPH_BASE_URL={base_url} must use https for a real tenant.")
    if re.match(r"^https://microsoftgraph\.chinacloudapi\.cn(/|$)", base_url, re.IGNORECASE):
        # The national-cloud tables of the v1.0 pass pages (list, get, create) exclude Azure operated by 21Vianet.
        raise SettingsError(
            f"TAPBOT_GRAPH_BASE_URL={base_url}: Microsoft Azure operated by 21Vianet does not offer the v1.0 "
            "Temporary Access Pass APIs, so tapbot cannot issue passes there."
        )
    tenant_id = reader.required("TAPBOT_GRAPH_TENANT_ID", "the Entra tenant id the bot manages")
    client_id = reader.optional("TAPBOT_GRAPH_CLIENT_ID")
    if mode is GraphMode.CERTIFICATE:
        path = Path(reader.required("TAPBOT_GRAPH_CERTIFICATE_PATH", "a PEM or PFX file with the private key"))
        if not path.is_file():
            raise SettingsError(f"TAPBOT_GRAPH_CERTIFICATE_PATH={path} does not exist.")
        return GraphSettings(
            **common,  # type: ignore[arg-type]
            tenant_id=tenant_id,
            client_id=reader.required("TAPBOT_GRAPH_CLIENT_ID", "the app registration's client id"),
            certificate_path=path,
            certificate_password=reader.optional("TAPBOT_GRAPH_CERTIFICATE_PASSWORD"),
        )
    if mode is GraphMode.CLIENT_SECRET:
        return GraphSettings(
            **common,  # type: ignore[arg-type]
            tenant_id=tenant_id,
            client_id=reader.required("TAPBOT_GRAPH_CLIENT_ID", "the app registration's client id"),
            client_secret=reader.required("TAPBOT_GRAPH_CLIENT_SECRET", "the app registration's secret"),
        )
    return GraphSettings(**common, tenant_id=tenant_id, client_id=client_id)  # type: ignore[arg-type]


def _connector_hosts(reader: _Reader) -> tuple[str, ...]:
    hosts = reader.csv("TAPBOT_CONNECTOR_HOSTS")
    for host in hosts:
        if not re.fullmatch(r"[A-Za-z0-9*.\-]+(:[0-9]{1,5})?|\[::1\](:[0-9]{1,5})?", host):
            raise SettingsError(
                f"TAPBOT_CONNECTOR_HOSTS: {host} is not a host name or pattern such as smba.trafficmanager.net, "
                "*.example.com or 127.0.0.1:3979."
            )
    return tuple(host.lower() for host in hosts) or DEFAULT_CONNECTOR_HOSTS


def _log_format(reader: _Reader, default: LogFormat) -> LogFormat:
    raw = (reader.optional("TAPBOT_LOG_FORMAT") or default.value).lower()
    try:
        return LogFormat(raw)
    except ValueError:
        raise SettingsError(f"TAPBOT_LOG_FORMAT={raw} is not one of: json, text.") from None


def _sandbox_defaults(tenant_file: Path) -> dict[str, object]:
    """The sandbox tenant file names its own tenant id and the bot's groups, so the demo needs no settings."""
    try:
        document = json.loads(tenant_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"TAPBOT_SANDBOX_TENANT={tenant_file} does not exist.") from None
    except (OSError, ValueError) as error:
        raise SettingsError(f"TAPBOT_SANDBOX_TENANT={tenant_file} is not a readable JSON file: {error}") from None
    if not isinstance(document, dict):
        raise SettingsError(f"TAPBOT_SANDBOX_TENANT={tenant_file} must hold a JSON object.")
    bot_section: dict[str, object] = document.get("tapbot") or {}
    tenant: dict[str, object] = document.get("tenant") or {}
    if not isinstance(bot_section, dict) or not isinstance(tenant, dict):
        raise SettingsError(f"TAPBOT_SANDBOX_TENANT={tenant_file}: 'tapbot' and 'tenant' must be JSON objects.")
    return {
        "tenantId": tenant.get("id") or document.get("tenantId"),
        "operatorGroupId": bot_section.get("operatorGroupId"),
        "protectedGroupIds": bot_section.get("protectedGroupIds", []),
    }


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _strings(value: object) -> list[str]:
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str) and item]
    return []


def _directory_cache_seconds(reader: _Reader) -> float:
    seconds = reader.number("TAPBOT_DIRECTORY_CACHE_SECONDS", 30.0, minimum=0.0)
    if not seconds <= 300:  # also refuses nan and inf
        raise SettingsError("TAPBOT_DIRECTORY_CACHE_SECONDS must be at most 300 (a short window is the point).")
    return seconds


def _reason_rules(reader: _Reader) -> ReasonRules:
    """Whether every issue, revoke, onboarding request and bulk row needs a reason, and a ticket number in it."""
    required = reader.boolean("TAPBOT_REASON_REQUIRED", False)
    raw_pattern = reader.optional("TAPBOT_TICKET_PATTERN")
    example = reader.optional("TAPBOT_TICKET_EXAMPLE")
    pattern: re.Pattern[str] | None = None
    if raw_pattern is not None:
        if len(raw_pattern) > 200:
            raise SettingsError("TAPBOT_TICKET_PATTERN is longer than 200 characters; a ticket number needs less.")
        try:
            pattern = re.compile(raw_pattern)
        except re.error as error:
            raise SettingsError(
                f"TAPBOT_TICKET_PATTERN={raw_pattern} is not a valid regular expression ({error}); "
                r"write one such as INC\d{7}."
            ) from None
        if pattern.search("") is not None:
            raise SettingsError(
                f"TAPBOT_TICKET_PATTERN={raw_pattern} matches an empty reason, so it would require nothing; "
                r"write the ticket number's shape, such as INC\d{7}."
            )
    if example is not None:
        if pattern is None:
            raise SettingsError("TAPBOT_TICKET_EXAMPLE is set but TAPBOT_TICKET_PATTERN is not; set both or neither.")
        if pattern.search(example) is None:
            raise SettingsError(
                f"TAPBOT_TICKET_EXAMPLE={example} does not match TAPBOT_TICKET_PATTERN={raw_pattern}: "
                "people would be shown an example that is refused."
            )
    return ReasonRules(required=required, ticket_pattern=pattern, ticket_example=example)


# Recovery passes need a verification of the person unless TAPBOT_VERIFICATION says otherwise: the help-desk call
# from an impostor is the attack this bot must make harder. `off` (or an empty value) restores the behaviour before
# verification existed.
DEFAULT_VERIFICATION = (VerificationMethod.MANAGER,)
VERIFICATION_OFF = ("off", "none", "false", "no")
_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _verification_rules(reader: _Reader, env: Mapping[str, str]) -> VerificationRules:
    """Which verifications of the person a recovery pass needs (TAPBOT_VERIFICATION), and the rest of their rules."""
    raw = reader.optional("TAPBOT_VERIFICATION")
    methods: tuple[VerificationMethod, ...]
    if raw is None and "TAPBOT_VERIFICATION" not in env:
        methods = DEFAULT_VERIFICATION
    elif raw is None or raw.lower() in VERIFICATION_OFF:
        methods = ()
    else:
        chosen: list[VerificationMethod] = []
        for word in reader.csv("TAPBOT_VERIFICATION"):
            try:
                method = VerificationMethod(word.lower())
            except ValueError:
                choices = ", ".join(method.value for method in VerificationMethod)
                raise SettingsError(
                    f"TAPBOT_VERIFICATION={raw}: '{word}' is not a verification method; use a comma list of "
                    f"{choices}, or off."
                ) from None
            if method not in chosen:
                chosen.append(method)
        methods = tuple(chosen)
    onboarding = reader.boolean("TAPBOT_VERIFY_ONBOARDING", False)
    if onboarding and not methods:
        raise SettingsError(
            "TAPBOT_VERIFY_ONBOARDING=true needs a verification method: set TAPBOT_VERIFICATION (manager, "
            "verified_id) too, or leave TAPBOT_VERIFY_ONBOARDING off."
        )
    minutes = reader.integer("TAPBOT_VERIFICATION_MINUTES", DEFAULT_VERIFICATION_MINUTES, minimum=2, maximum=120)
    group = reader.optional("TAPBOT_VERIFICATION_FALLBACK_GROUP")
    if group is not None and not _OBJECT_ID.match(group):
        raise SettingsError(
            f"TAPBOT_VERIFICATION_FALLBACK_GROUP={group} is not a group object id (a GUID such as "
            "21ab2cff-3026-4c46-8578-27cba81a4826, from the group's overview in Entra)."
        )
    return VerificationRules(
        methods=methods,
        onboarding=onboarding,
        window=timedelta(minutes=minutes),
        fallback_group_id=group.lower() if group else None,
    )


def _verified_id_settings(reader: _Reader, mode: GraphMode) -> VerifiedIdSettings:
    """Checked whenever set; required for a real tenant once `verified_id` is among TAPBOT_VERIFICATION's methods."""
    enabled = "verified_id" in (method.lower() for method in reader.csv("TAPBOT_VERIFICATION"))
    real = mode not in (GraphMode.SANDBOX, GraphMode.ANONYMOUS)
    authority = reader.optional("TAPBOT_VERIFIED_ID_AUTHORITY")
    if authority is not None and not re.fullmatch(r"did:[a-z0-9]+:[^\s]+", authority):
        raise SettingsError(
            f"TAPBOT_VERIFIED_ID_AUTHORITY={authority} is not a DID: copy the tenant's decentralized identifier from "
            "the Verified ID overview in the Entra admin center (did:web:…)."
        )
    if authority is None and enabled and mode is not GraphMode.SANDBOX:
        raise SettingsError(
            "Set TAPBOT_VERIFIED_ID_AUTHORITY to the tenant's Verified ID authority (did:web:…, in the Entra admin "
            "center under Verified ID, Overview): TAPBOT_VERIFICATION accepts verified_id."
        )
    service_url = _https_url(reader, "TAPBOT_VERIFIED_ID_SERVICE_URL", https=real)
    if service_url is None and real:  # a stand-alone sandbox (anonymous) serves it next to its Graph
        service_url = "https://verifiedid.did.msidentity.com/v1.0"
    callback = _https_url(reader, "TAPBOT_VERIFIED_ID_CALLBACK_URL", https=real)
    if callback is None and enabled and real:
        raise SettingsError(
            "Set TAPBOT_VERIFIED_ID_CALLBACK_URL to the bot's public https address (e.g. https://tapbot.contoso.com): "
            "Verified ID posts its answers to /api/verifiedid/callback there."
        )
    threshold = reader.integer("TAPBOT_VERIFIED_ID_THRESHOLD", 70, minimum=50, maximum=100)
    return VerifiedIdSettings(authority, service_url, callback, threshold)


def _https_url(reader: _Reader, name: str, *, https: bool) -> str | None:
    value = reader.optional(name)
    if value is None:
        return None
    scheme = "https" if https else "https?"
    if not re.fullmatch(scheme + r"://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[^\s?#]*)?", value):
        raise SettingsError(
            f"{name}={value} must be an {'https' if https else 'http(s)'} address without query or fragment, "
            "such as https://tapbot.contoso.com."
        )
    return value.rstrip("/")


def _health_port(reader: _Reader) -> int | None:
    port = reader.optional_integer("TAPBOT_HEALTH_PORT", minimum=1, maximum=65535)
    if port is not None and port == reader.integer("PORT", 3978, minimum=0, maximum=65535):
        raise SettingsError(f"TAPBOT_HEALTH_PORT={port} is PORT: give the health paths a port of their own.")
    return port


def _database_settings(reader: _Reader) -> DatabaseSettings:
    try:
        return database_settings(
            reader.optional("TAPBOT_DATABASE_URL") or DEFAULT_DATABASE_URL,
            auth=reader.optional("TAPBOT_DATABASE_AUTH"),
            tls=reader.optional("TAPBOT_DATABASE_TLS"),
            ca_file=reader.optional("TAPBOT_DATABASE_CA_FILE"),
            client_id=reader.optional("TAPBOT_DATABASE_CLIENT_ID"),
            token_scope=reader.optional("TAPBOT_DATABASE_TOKEN_SCOPE"),
        )
    except DatabaseSettingsError as error:
        raise SettingsError(f"{error}.") from None


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def optional(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def required(self, name: str, meaning: str) -> str:
        value = self.optional(name)
        if value is None:
            raise SettingsError(f"Set {name}: {meaning}.")
        return value

    def csv(self, name: str) -> list[str]:
        value = self.optional(name) or ""
        return [item.strip() for item in value.split(",") if item.strip()]

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        value = self.optional(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(f"{name}={value} is not a whole number.") from None
        if not minimum <= number <= maximum:
            raise SettingsError(f"{name}={value} must be between {minimum} and {maximum}.")
        return number

    def optional_integer(self, name: str, *, minimum: int, maximum: int) -> int | None:
        if self.optional(name) is None:
            return None
        return self.integer(name, minimum, minimum=minimum, maximum=maximum)

    def boolean(self, name: str, default: bool) -> bool:
        value = (self.optional(name) or "").lower()
        if not value:
            return default
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name}={value} is not true or false.")

    def number(self, name: str, default: float, *, minimum: float) -> float:
        value = self.optional(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise SettingsError(f"{name}={value} is not a number.") from None
        if number < minimum:
            raise SettingsError(f"{name}={value} must be at least {minimum}.")
        return number

    def timezone(self, name: str, default: str) -> ZoneInfo:
        value = self.optional(name) or default
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"{name}={value} is not an IANA time zone such as Europe/Berlin.") from None
