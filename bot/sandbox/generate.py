"""Bigger sandbox tenants for bulk tests and benchmarks: the demo tenant plus N new hires.

`python -m bot.sandbox.generate --users 1000 --out var/bulk_tenant.json`; `bulk_upns(n)` lists their UPNs.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from bot.settings import DEMO_TENANT_FILE

NAMESPACE = uuid.UUID("5b0c8f1e-7d3a-4e52-9f60-2c1d9a7e4b11")


def bulk_upns(count: int, domain: str = "contoso.onmicrosoft.com") -> list[str]:
    return [f"bulk{index:05d}@{domain}" for index in range(1, count + 1)]


def operator_upns(count: int, domain: str = "contoso.onmicrosoft.com") -> list[str]:
    return [f"operator{index:03d}@{domain}" for index in range(1, count + 1)]


def user_id(upn: str) -> str:
    return str(uuid.uuid5(NAMESPACE, upn))


def bulk_tenant(count: int, base: Path = DEMO_TENANT_FILE, *, operators: int = 0) -> dict[str, Any]:
    """The base tenant with `count` more members (deterministic ids), each with only a password, and
    `operators` more members of its operator group."""
    tenant = json.loads(base.read_text(encoding="utf-8"))
    operator_group = (
        next(group for group in tenant["groups"] if group["id"] == tenant.get("tapbot", {}).get("operatorGroupId"))
        if operators
        else None
    )
    for upn in operator_upns(operators, tenant["domain"]):
        tenant["users"].append({"id": user_id(upn), "userPrincipalName": upn, "displayName": upn.split("@")[0]})
        assert operator_group is not None
        operator_group["members"].append(user_id(upn))
    for upn in bulk_upns(count, tenant["domain"]):
        number = upn.split("@")[0].removeprefix("bulk")
        tenant["users"].append(
            {
                "id": user_id(upn),
                "userPrincipalName": upn,
                "displayName": f"Bulk User {number}",
                "department": "Onboarding",
            }
        )
    return tenant


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args(argv)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(bulk_tenant(arguments.users)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
