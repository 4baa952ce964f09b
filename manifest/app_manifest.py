"""The Teams app manifest (schema v1.30) of tapbot, built from a few validated inputs.

`ManifestSettings.create(...)` checks and normalises what an admin typed (the bot's app id, its host name, the
package version, the display name, the developer links, and for delegated writes the App ID URI Teams signs users
in to) and raises `ManifestInputError` with one sentence naming the bad value. `build_manifest(settings)` is a pure
function from those settings to the manifest dict.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.domain.commands.table import MESSAGE_ACTION_ID, MESSAGE_ACTION_TITLE
from manifest import ACCENT_COLOR, COLOR_ICON, OUTLINE_ICON
from manifest.content import (
    BOT_SCOPES,
    DEFAULT_SHORT_NAME,
    FULL_DESCRIPTION,
    FULL_NAME_SUFFIX,
    SHORT_DESCRIPTION,
    command_list,
)

MANIFEST_VERSION = "1.30"
SCHEMA_URL = f"https://developer.microsoft.com/en-us/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
DEVELOPER_NAME = "tapbot contributors"
DEFAULT_VERSION = "1.0.0"
MAX_SHORT_NAME = 30
MAX_URL = 2048
MAX_HOST_NAME = 253

# The message action's id and title live in the command table; bot/teams/message_action.py answers its invokes.
MESSAGE_ACTION_DESCRIPTION = (
    "Open the issue form with the person and the reason taken from this message; the pass comes to you privately."
)

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_NIL_GUID = "00000000-0000-0000-0000-000000000000"
_SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
_HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_EXAMPLE_HOST = "tapbot.contoso.com"

# Delegated writes (TAPBOT_GRAPH_WRITES=delegated): Teams single sign-on needs `webApplicationInfo` and the Bot
# Framework token service's sign-in host among the valid domains (Teams docs, "Update app manifest for SSO").
GRAPH_WRITES = ("application", "delegated")
TOKEN_SERVICE_DOMAIN = "token.botframework.com"


class ManifestInputError(ValueError):
    """An input the package cannot be built from; the message is one sentence that names it."""


@dataclass(frozen=True)
class ManifestSettings:
    """Validated, normalised inputs of the manifest. Build it with `create`, which checks every value."""

    app_id: str
    domain: str
    version: str
    short_name: str
    website_url: str
    privacy_url: str
    terms_url: str
    # The App ID URI Teams asks an SSO token for (webApplicationInfo.resource); None: application writes, no SSO.
    sso_resource: str | None = None

    @property
    def delegated(self) -> bool:
        return self.sso_resource is not None

    @classmethod
    def create(
        cls,
        *,
        app_id: str,
        domain: str,
        version: str = DEFAULT_VERSION,
        short_name: str = DEFAULT_SHORT_NAME,
        website_url: str | None = None,
        privacy_url: str | None = None,
        terms_url: str | None = None,
        graph_writes: str = "application",
        sso_resource: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> ManifestSettings:
        """Checks each value; the developer links default to pages on the bot's own host.

        With `graph_writes="delegated"` the manifest enables Teams single sign-on for `sso_resource` (default
        `api://botid-{app id}`); in application mode `sso_resource` is ignored.

        `labels` renames a field in error messages (`{"app_id": "--app-id"}`), so they name what the admin typed.
        """
        names = {**_LABELS, **(labels or {})}
        checked_app_id = parse_app_id(app_id, label=names["app_id"])
        host = parse_domain(domain, label=names["domain"])
        delegated = parse_graph_writes(graph_writes, label=names["graph_writes"]) == "delegated"
        resource = (
            parse_sso_resource(
                sso_resource or default_sso_resource(checked_app_id), checked_app_id, label=names["sso_resource"]
            )
            if delegated
            else None
        )
        return cls(
            app_id=checked_app_id,
            domain=host,
            version=parse_version(version, label=names["version"]),
            short_name=parse_short_name(short_name, label=names["short_name"]),
            website_url=parse_https_url(website_url or f"https://{host}/", label=names["website_url"]),
            privacy_url=parse_https_url(privacy_url or f"https://{host}/privacy", label=names["privacy_url"]),
            terms_url=parse_https_url(terms_url or f"https://{host}/terms", label=names["terms_url"]),
            sso_resource=resource,
        )


_LABELS = {
    "app_id": "app id",
    "domain": "domain",
    "version": "version",
    "short_name": "name",
    "website_url": "website URL",
    "privacy_url": "privacy URL",
    "terms_url": "terms of use URL",
    "graph_writes": "graph writes",
    "sso_resource": "SSO resource",
}


def parse_app_id(value: str, *, label: str = "app id") -> str:
    """The Azure Bot's Microsoft App ID, a GUID, in lower case."""
    text = value.strip().lower()
    if not _GUID.match(text):
        raise ManifestInputError(
            f"{label} {value!r} is not a GUID (8-4-4-4-12 hex digits): use the Azure Bot's Microsoft App ID."
        )
    if text == _NIL_GUID:
        raise ManifestInputError(f"{label} {value!r} is the all-zero GUID: use the Azure Bot's Microsoft App ID.")
    return text


def parse_domain(value: str, *, label: str = "domain") -> str:
    """The host name the bot is reached at (its messaging endpoint's host), lower case, without a trailing dot."""
    text = value.strip()
    if not text:
        raise ManifestInputError(f"{label} is empty: give the bot's host name, e.g. {_EXAMPLE_HOST}.")
    if "://" in text:
        host = urllib.parse.urlsplit(text).hostname or _EXAMPLE_HOST
        raise ManifestInputError(f"{label} {value!r} is a URL: give only its host name, e.g. {host}.")
    if "/" in text:
        raise ManifestInputError(f"{label} {value!r} contains a path: give only the host name, e.g. {_EXAMPLE_HOST}.")
    if ":" in text:
        raise ManifestInputError(
            f"{label} {value!r} contains a port or is an IPv6 address: give only the host name, e.g. {_EXAMPLE_HOST}."
        )
    if "*" in text:
        raise ManifestInputError(f"{label} {value!r} is a wildcard: give the bot's host name, e.g. {_EXAMPLE_HOST}.")
    if not text.isascii():
        raise ManifestInputError(f"{label} {value!r} is not ASCII: give its punycode form (xn--…).")
    host = text.lower().removesuffix(".")
    labels = host.split(".")
    if all(label_text.isdigit() for label_text in labels):
        raise ManifestInputError(f"{label} {value!r} is an IP address: give the bot's DNS host name.")
    if len(labels) < 2:
        raise ManifestInputError(
            f"{label} {value!r} is not a fully qualified host name: give the name Teams reaches the bot at, "
            f"e.g. {_EXAMPLE_HOST}."
        )
    if len(host) > MAX_HOST_NAME or not all(_HOST_LABEL.match(label_text) for label_text in labels):
        raise ManifestInputError(
            f"{label} {value!r} is not a valid host name (letters, digits and hyphens between dots, "
            f"≤ 63 per label, ≤ {MAX_HOST_NAME} in all)."
        )
    return host


def parse_graph_writes(value: str, *, label: str = "graph writes") -> str:
    """How the bot writes passes: `application` (its own permission) or `delegated` (the technician's, by SSO)."""
    text = value.strip().lower()
    if text not in GRAPH_WRITES:
        raise ManifestInputError(f"{label} {value!r} is neither application nor delegated.")
    return text


def default_sso_resource(app_id: str) -> str:
    """The App ID URI Teams documents for a bot's single sign-on (TAPBOT_SSO_RESOURCE's default too)."""
    return f"api://botid-{app_id}"


def parse_sso_resource(value: str, app_id: str, *, label: str = "SSO resource") -> str:
    """The App ID URI of the bot's app registration: `api://botid-{app id}` or `api://{host}/botid-{app id}`."""
    text = value.strip()
    expected = default_sso_resource(app_id)
    parts = urllib.parse.urlsplit(text)
    if parts.scheme.lower() != "api" or any(character.isspace() for character in text) or len(text) > MAX_URL:
        raise ManifestInputError(
            f"{label} {value!r} is not an App ID URI: use the one the app registration exposes, e.g. {expected}."
        )
    if not text.lower().endswith(f"botid-{app_id}") or parts.query or parts.fragment:
        raise ManifestInputError(
            f"{label} {value!r} does not end in botid-{app_id}: Teams signs users in to a bot only through the App "
            f"ID URI of the bot's own app id ({expected}, or api://<host>/botid-{app_id})."
        )
    return text


def parse_version(value: str, *, label: str = "version") -> str:
    """The package version, MAJOR.MINOR.PATCH; Teams only takes an update whose version is higher."""
    text = value.strip()
    if not _SEMVER.match(text):
        raise ManifestInputError(f"{label} {value!r} is not a version like 1.0.0 (MAJOR.MINOR.PATCH, digits only).")
    return text


def parse_short_name(value: str, *, label: str = "name") -> str:
    text = " ".join(value.split())
    if not text:
        raise ManifestInputError(f"{label} is empty: give the app's display name, e.g. {DEFAULT_SHORT_NAME}.")
    if len(text) > MAX_SHORT_NAME:
        raise ManifestInputError(f"{label} {value!r} is {len(text)} characters long: Teams allows {MAX_SHORT_NAME}.")
    return text


def parse_https_url(value: str, *, label: str = "URL") -> str:
    text = value.strip()
    parts = urllib.parse.urlsplit(text)
    if parts.scheme.lower() != "https" or not parts.hostname or any(character.isspace() for character in text):
        raise ManifestInputError(f"{label} {value!r} is not an https:// URL.")
    if len(text) > MAX_URL:
        raise ManifestInputError(f"{label} is {len(text)} characters long: Teams allows {MAX_URL}.")
    return text


def build_manifest(settings: ManifestSettings) -> dict[str, Any]:
    """The manifest.json of the app package, as a dict in the order Teams documents the fields."""
    return {
        "$schema": SCHEMA_URL,
        "manifestVersion": MANIFEST_VERSION,
        "version": settings.version,
        "id": settings.app_id,
        "developer": {
            "name": DEVELOPER_NAME,
            "websiteUrl": settings.website_url,
            "privacyUrl": settings.privacy_url,
            "termsOfUseUrl": settings.terms_url,
        },
        "name": {"short": settings.short_name, "full": _full_name(settings.short_name)},
        "description": {"short": SHORT_DESCRIPTION, "full": FULL_DESCRIPTION},
        "icons": {"color": COLOR_ICON.name, "outline": OUTLINE_ICON.name},
        "accentColor": ACCENT_COLOR,
        "bots": [
            {
                "botId": settings.app_id,
                "scopes": list(BOT_SCOPES),
                "supportsFiles": True,
                "isNotificationOnly": False,
                "commandLists": [
                    {
                        "scopes": [scope],
                        "commands": [
                            {"title": command.title, "description": command.description}
                            for command in command_list(scope)
                        ],
                    }
                    for scope in BOT_SCOPES
                ],
            }
        ],
        "composeExtensions": [
            {
                "botId": settings.app_id,
                "commands": [
                    {
                        "id": MESSAGE_ACTION_ID,
                        "type": "action",
                        "title": MESSAGE_ACTION_TITLE,
                        "description": MESSAGE_ACTION_DESCRIPTION,
                        "context": ["message"],
                        "fetchTask": True,
                    }
                ],
            }
        ],
        "validDomains": [settings.domain, *([TOKEN_SERVICE_DOMAIN] if settings.delegated else [])],
        **(
            {"webApplicationInfo": {"id": settings.app_id, "resource": settings.sso_resource}}
            if settings.delegated
            else {}
        ),
        # The Add button installs the app for the person: the pass can only reach a requester who has it personally.
        "defaultInstallScope": "personal",
    }


def manifest_json(settings: ManifestSettings) -> bytes:
    """manifest.json as written into the package: UTF-8 without BOM, two-space indent, a final newline."""
    return (json.dumps(build_manifest(settings), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _full_name(short_name: str) -> str:
    return short_name + FULL_NAME_SUFFIX  # ≤ 30 + 26 characters, well inside Teams' 100
