"""Typed access to the JSON objects of a tenant file, naming the offending entry in every error."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import cast

from bot.sandbox.clock import parse_graph_datetime
from bot.sandbox.tenant_records import TenantFileError


class Fields:
    """Typed access to one JSON object of the tenant file, naming the entry in every error."""

    def __init__(
        self,
        data: object,
        where: str,
        required: set[str],
        optional: set[str] | None = None,
        allow_extra: bool = False,
    ) -> None:
        if not isinstance(data, dict):
            raise TenantFileError(f"{where}: expected a JSON object")
        self.data = cast(dict[str, object], data)
        self.where = where
        missing = sorted(required - self.data.keys())
        if missing:
            raise TenantFileError(f"{where}: missing {', '.join(missing)}")
        unknown = sorted(self.data.keys() - required - (optional or set()))
        if unknown and not allow_extra:
            raise TenantFileError(f"{where}: unknown field(s) {', '.join(unknown)}")

    def value(self, key: str) -> object:
        return self.data.get(key)

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise TenantFileError(f"{self.where}: {key} must be a non-empty string")
        return value

    def optional_text(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.text(key)

    def guid(self, key: str) -> str:
        value = self.text(key)
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise TenantFileError(f"{self.where}: {key} '{value}' is not a GUID") from None

    def optional_guid(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.guid(key)

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise TenantFileError(f"{self.where}: {key} must be true or false")
        return value

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise TenantFileError(f"{self.where}: {key} must be an integer")
        return value

    def moment(self, key: str) -> datetime:
        value = self.text(key)
        try:
            return parse_graph_datetime(value)
        except ValueError:
            raise TenantFileError(f"{self.where}: {key} '{value}' is not an ISO 8601 date-time") from None

    def optional_moment(self, key: str) -> datetime | None:
        return None if self.data.get(key) is None else self.moment(key)

    def array(self, key: str) -> list[object]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise TenantFileError(f"{self.where}: {key} must be a JSON array")
        return cast(list[object], value)


def label(data: object, key: str) -> str:
    if isinstance(data, dict):
        value = cast(dict[str, object], data).get(key)
        if isinstance(value, str):
            return f" ({value})"
    return ""
