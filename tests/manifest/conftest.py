"""Fixtures of the app package tests: sample settings and the official Teams manifest schema, read offline.

The schema comes from the npm package `@microsoft/app-manifest` in the repo's node_modules (`npm ci`, which
`./dev test` runs). Without it the schema tests are skipped locally and fail under CI. TAPBOT_NODE_MODULES points
them at another node_modules folder.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT4
from referencing.typing import Retrieve

from manifest.app_manifest import MANIFEST_VERSION, ManifestSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PACKAGE = "@microsoft/app-manifest"
SCHEMA_IN_PACKAGE = f"build/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"

APP_ID = "6f1a3c2e-1b2d-4c3e-9f10-123456789abc"
DOMAIN = "tapbot.contoso.com"


@pytest.fixture
def settings() -> ManifestSettings:
    return ManifestSettings.create(app_id=APP_ID, domain=DOMAIN)


@dataclass(frozen=True)
class TeamsSchema:
    path: Path
    schema: dict[str, Any]
    validator: Draft4Validator

    def errors(self, instance: Any) -> list[str]:
        """Every violation, as `path: message`, sorted so a failure reads the same on each run."""
        return sorted(
            f"/{'/'.join(str(part) for part in error.absolute_path)}: {error.message}"
            for error in self.validator.iter_errors(instance)
        )


def in_ci(env: Mapping[str, str]) -> bool:
    return env.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def schema_path() -> Path:
    node_modules = Path(os.environ.get("TAPBOT_NODE_MODULES") or REPO_ROOT / "node_modules")
    return node_modules / SCHEMA_PACKAGE / SCHEMA_IN_PACKAGE


@pytest.fixture(scope="session")
def teams_schema() -> TeamsSchema:
    path = schema_path()
    if not path.is_file():
        reason = (
            f"the Teams manifest schema v{MANIFEST_VERSION} is not installed ({path}): "
            f"add {SCHEMA_PACKAGE} to package.json and run `npm ci` (./dev test does)"
        )
        if in_ci(os.environ):
            pytest.fail(reason)
        pytest.skip(reason)
    schema = json.loads(path.read_text(encoding="utf-8"))
    registry: Registry[Any] = Registry(retrieve=_sibling_schema_retriever(path.parent))
    validator = Draft4Validator(schema, registry=registry, format_checker=Draft4Validator.FORMAT_CHECKER)
    return TeamsSchema(path, schema, validator)


def _sibling_schema_retriever(folder: Path) -> Retrieve[Any]:
    """Resolves a remote `$ref` to the file of the same name next to the schema: the tests never go online."""

    def retrieve(uri: str) -> Resource[Any]:
        name = Path(urllib.parse.urlsplit(uri).path).name
        candidate = folder / name
        if not name or not candidate.is_file():
            raise NoSuchResource(ref=uri)
        contents = json.loads(candidate.read_text(encoding="utf-8"))
        return Resource.from_contents(contents, default_specification=DRAFT4)

    return retrieve
