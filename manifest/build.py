"""Builds the Teams app package (the zip an admin uploads) from the bot's app id and host name.

    python -m manifest.build --app-id <guid> --domain <host> [--version 1.0.0] [--name tapbot] [--out dist/tapbot.zip]
                             [--graph-writes application|delegated] [--sso-resource api://botid-<guid>]

Every option can also come from the environment (the option wins): TAPBOT_MANIFEST_APP_ID (falling back to the
bot's own CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID), TAPBOT_MANIFEST_DOMAIN, TAPBOT_MANIFEST_VERSION,
TAPBOT_MANIFEST_NAME, TAPBOT_MANIFEST_WEBSITE_URL, TAPBOT_MANIFEST_PRIVACY_URL, TAPBOT_MANIFEST_TERMS_URL, and the
bot's own TAPBOT_GRAPH_WRITES and TAPBOT_SSO_RESOURCE (so a package built with the bot's settings matches its mode).
A wrong or missing input exits with status 2 and one line naming it; the same inputs always give the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from manifest import PACKAGE_DIR
from manifest.app_manifest import DEFAULT_VERSION, GRAPH_WRITES, ManifestInputError, ManifestSettings
from manifest.content import DEFAULT_SHORT_NAME
from manifest.package import write_package

PROG = "python -m manifest.build"
DEFAULT_OUT = PACKAGE_DIR.parent / "dist" / "tapbot.zip"
BOT_CLIENT_ID_VARIABLE = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID"
EXIT_USAGE = 2
EXIT_FAILED = 1


@dataclass(frozen=True)
class _Option:
    """One input: its command-line flag and the environment variables read, in order, when the flag is absent."""

    flag: str
    variables: tuple[str, ...]
    help: str

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


_APP_ID = _Option(
    "--app-id",
    ("TAPBOT_MANIFEST_APP_ID", BOT_CLIENT_ID_VARIABLE),
    "the Azure Bot's Microsoft App ID (a GUID); it is also the Teams app id",
)
_DOMAIN = _Option(
    "--domain",
    ("TAPBOT_MANIFEST_DOMAIN",),
    "host name of the bot's messaging endpoint, e.g. tapbot.contoso.com (no https://, no path)",
)
_VERSION = _Option(
    "--version", ("TAPBOT_MANIFEST_VERSION",), f"package version, raise it for every update (default {DEFAULT_VERSION})"
)
_NAME = _Option("--name", ("TAPBOT_MANIFEST_NAME",), f"display name, ≤ 30 characters (default {DEFAULT_SHORT_NAME})")
_WEBSITE_URL = _Option(
    "--website-url", ("TAPBOT_MANIFEST_WEBSITE_URL",), "developer's support page (default https://<domain>/)"
)
_PRIVACY_URL = _Option(
    "--privacy-url", ("TAPBOT_MANIFEST_PRIVACY_URL",), "privacy statement (default https://<domain>/privacy)"
)
_TERMS_URL = _Option("--terms-url", ("TAPBOT_MANIFEST_TERMS_URL",), "terms of use (default https://<domain>/terms)")
_GRAPH_WRITES = _Option(
    "--graph-writes",
    ("TAPBOT_MANIFEST_GRAPH_WRITES", "TAPBOT_GRAPH_WRITES"),
    f"{' or '.join(GRAPH_WRITES)}: delegated adds Teams single sign-on (webApplicationInfo) (default application)",
)
_SSO_RESOURCE = _Option(
    "--sso-resource",
    ("TAPBOT_MANIFEST_SSO_RESOURCE", "TAPBOT_SSO_RESOURCE"),
    "with delegated writes: the App ID URI of the bot's app registration (default api://botid-<app id>)",
)
# Keyed by the argument of ManifestSettings.create each option fills.
_OPTIONS = {
    "app_id": _APP_ID,
    "domain": _DOMAIN,
    "version": _VERSION,
    "short_name": _NAME,
    "website_url": _WEBSITE_URL,
    "privacy_url": _PRIVACY_URL,
    "terms_url": _TERMS_URL,
    "graph_writes": _GRAPH_WRITES,
    "sso_resource": _SSO_RESOURCE,
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def argument_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Build tapbot's Teams app package: a zip with manifest.json, color.png and outline.png.",
        epilog="Each option falls back to the environment variable named in brackets.",
    )
    for option in _OPTIONS.values():
        parser.add_argument(option.flag, dest=option.dest, help=f"{option.help} [{' or '.join(option.variables)}]")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to write the zip (default {DEFAULT_OUT})")
    return parser


@dataclass(frozen=True)
class _Found:
    value: str
    source: str  # the flag or variable it came from, named in error messages


def _lookup(option: _Option, arguments: argparse.Namespace, env: Mapping[str, str]) -> _Found | None:
    """`option`'s value: the flag, else the first non-empty variable; None when neither is there."""
    value: str | None = getattr(arguments, option.dest)
    if value is not None:
        return _Found(value, option.flag)
    for variable in option.variables:
        if env.get(variable, "").strip():
            return _Found(env[variable], variable)
    return None


def settings_from(arguments: argparse.Namespace, env: Mapping[str, str]) -> ManifestSettings:
    """The validated settings; ManifestInputError names the flag or variable a bad or missing value came from."""
    found = {field: _lookup(option, arguments, env) for field, option in _OPTIONS.items()}
    app_id, domain = found["app_id"], found["domain"]
    if app_id is None:
        raise ManifestInputError(
            f"no bot app id: pass --app-id or set TAPBOT_MANIFEST_APP_ID (or {BOT_CLIENT_ID_VARIABLE})."
        )
    if domain is None:
        raise ManifestInputError(
            "no domain: pass --domain or set TAPBOT_MANIFEST_DOMAIN to the host name of the bot's messaging endpoint, "
            "e.g. tapbot.contoso.com."
        )
    version, name = found["version"], found["short_name"]
    return ManifestSettings.create(
        app_id=app_id.value,
        domain=domain.value,
        version=DEFAULT_VERSION if version is None else version.value,
        short_name=DEFAULT_SHORT_NAME if name is None else name.value,
        website_url=_value(found["website_url"]),
        privacy_url=_value(found["privacy_url"]),
        terms_url=_value(found["terms_url"]),
        graph_writes=_value(found["graph_writes"]) or "application",
        sso_resource=_value(found["sso_resource"]),
        labels={field: value.source for field, value in found.items() if value is not None},
    )


def _value(found: _Found | None) -> str | None:
    return None if found is None else found.value


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    arguments = argument_parser().parse_args(argv)
    environment = os.environ if env is None else env
    try:
        settings = settings_from(arguments, environment)
    except ManifestInputError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_USAGE
    out: Path = arguments.out
    try:
        data = write_package(settings, out)
    except (OSError, ValueError) as error:
        print(f"{PROG}: cannot write {out}: {error}", file=sys.stderr)
        return EXIT_FAILED
    digest = hashlib.sha256(data).hexdigest()
    print(f"wrote {out} ({len(data)} bytes, sha256 {digest})")
    print(f"  app id {settings.app_id}, domain {settings.domain}, version {settings.version}")
    if settings.delegated:
        print(f"  delegated writes: Teams single sign-on to {settings.sso_resource} (webApplicationInfo)")
    print("  upload it in the Teams admin center (Teams apps > Manage apps > Upload); see docs/app-package.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
