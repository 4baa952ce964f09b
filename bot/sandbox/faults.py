"""Injected failures: a rule matches Graph requests by method and path and replaces their answer."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar, cast

from bot.sandbox.errors import GraphError, default_code_for

FAULT_FIELDS = frozenset(
    {"method", "path_regex", "status", "count", "after_effect", "delay_s", "code", "message", "retry_after_s"}
)


T = TypeVar("T")


class FaultRuleError(ValueError):
    """A fault rule sent to the control plane is invalid."""


@dataclass
class FaultRule:
    id: str
    path_regex: re.Pattern[str]
    method: str | None = None
    status: int | None = None
    remaining: int | None = 1
    """Matches left; None means until the faults are cleared."""
    after_effect: bool = False
    """Perform the request for real, then answer with the error anyway (an uncertain failure)."""
    delay_s: float = 0.0
    code: str | None = None
    message: str | None = None
    retry_after_s: int | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and self.path_regex.search(path) is not None

    def error(self) -> GraphError:
        assert self.status is not None
        headers = {"Retry-After": str(self.retry_after_s)} if self.retry_after_s is not None else {}
        return GraphError(
            self.status,
            self.code or default_code_for(self.status),
            self.message or f"Injected sandbox fault {self.id} (HTTP {self.status}).",
            headers,
        )

    def describe(self) -> dict[str, object]:
        return {
            "id": self.id,
            "method": self.method,
            "path_regex": self.path_regex.pattern,
            "status": self.status,
            "count": self.remaining,
            "after_effect": self.after_effect,
            "delay_s": self.delay_s,
            "code": self.code,
            "message": self.message,
            "retry_after_s": self.retry_after_s,
        }


def parse_fault_rule(data: object) -> FaultRule:
    if not isinstance(data, dict):
        raise FaultRuleError("a fault rule is a JSON object")
    fields = cast(dict[str, object], data)
    unknown = sorted(fields.keys() - FAULT_FIELDS)
    if unknown:
        raise FaultRuleError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(FAULT_FIELDS))}")

    pattern = fields.get("path_regex")
    if not isinstance(pattern, str) or not pattern:
        raise FaultRuleError("path_regex is required (a regular expression searched in the path after /v1.0)")
    try:
        path_regex = re.compile(pattern)
    except re.error as error:
        raise FaultRuleError(f"path_regex does not compile: {error}") from None

    method = _optional(fields, "method", str)
    status = _optional(fields, "status", int)
    count = _optional(fields, "count", int) if "count" in fields else 1
    after_effect = _optional(fields, "after_effect", bool) or False
    delay = _optional(fields, "delay_s", float) or 0.0
    retry_after = _optional(fields, "retry_after_s", int)

    if status is not None and not 400 <= status <= 599:
        raise FaultRuleError("status must be an HTTP error status (400-599)")
    if status is None and delay <= 0:
        raise FaultRuleError("a fault needs a status, a positive delay_s, or both")
    if after_effect and status is None:
        raise FaultRuleError("after_effect needs a status to answer with")
    if count is not None and count < 1:
        raise FaultRuleError("count must be at least 1, or null for every matching request")
    if delay < 0:
        raise FaultRuleError("delay_s cannot be negative")
    if retry_after is not None and retry_after < 0:
        raise FaultRuleError("retry_after_s cannot be negative")

    return FaultRule(
        id=str(uuid.uuid4()),
        path_regex=path_regex,
        method=method.upper() if method else None,
        status=status,
        remaining=count,
        after_effect=after_effect,
        delay_s=delay,
        code=_optional(fields, "code", str),
        message=_optional(fields, "message", str),
        retry_after_s=retry_after,
    )


def _optional(fields: Mapping[str, object], key: str, kind: type[T]) -> T | None:
    value = fields.get(key)
    if value is None:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return cast(T, float(value))
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FaultRuleError(f"{key} must be of type {kind.__name__}")
    return value


class FaultInjector:
    def __init__(self) -> None:
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> None:
        self._rules.append(rule)

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first rule matching the request, with one use consumed."""
        for rule in self._rules:
            if rule.matches(method, path):
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                return rule
        return None

    def rules(self) -> list[FaultRule]:
        return list(self._rules)

    def clear(self) -> None:
        self._rules.clear()
