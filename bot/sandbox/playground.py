"""The Microsoft 365 Agents Playground configuration for a sandbox tenant.

The Playground is the Teams client of the sandbox: every message it sends comes from its `currentUser`, so that
user must be a person of the sandbox tenant (by object id), and the five other users it lists should be people
worth trying the bot with. `python -m bot.sandbox.playground [--as UPN]` prints the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bot.sandbox.tenant import DEMO_TENANT_PATH, Tenant, TenantUser, load_tenant

DEFAULT_DEMO_CURRENT_USER = "AdeleV@contoso.onmicrosoft.com"  # an operator of the demo tenant
DEFAULT_DEMO_USERS = (
    "MeganB@contoso.onmicrosoft.com",  # a manager
    "LeeG@contoso.onmicrosoft.com",  # her new hire
    "DiegoS@contoso.onmicrosoft.com",  # not an operator
    "AlexW@contoso.onmicrosoft.com",  # an operator through a nested group
    "IsaiahL@contoso.onmicrosoft.com",  # a Global Administrator
)
BOT_ID = "28:tapbot-sandbox"
BOT_NAME = "tapbot"


def playground_config(
    tenant: Tenant, current_user: str = DEFAULT_DEMO_CURRENT_USER, others: tuple[str, ...] = DEFAULT_DEMO_USERS
) -> dict[str, Any]:
    """A valid Playground config (schema 0.1.1): exactly five other users, one group chat, one team."""
    me = _person(tenant, current_user)
    people = [_person(tenant, reference) for reference in others if reference.lower() != current_user.lower()]
    if len(people) != 5:
        raise ValueError("the Playground needs exactly five users besides the current one")
    return {
        "version": "0.1.1",
        "tenantId": tenant.tenant_id,
        "bot": {"id": BOT_ID, "name": BOT_NAME},
        "currentUser": _account(me),
        "users": [_account(person) for person in people],
        "personalChat": {"id": f"personal-{me.id}"},
        "groupChat": {"id": "19:it-operations@thread.v2", "name": "IT Operations"},
        "team": {
            "id": "19:it-department@thread.tacv2",
            "name": "IT Department",
            "aadGroupId": "5d1a0c7e-0000-4000-8000-00000000d001",
            "channels": [{"id": "19:helpdesk@thread.tacv2", "name": "Helpdesk"}],
        },
    }


def others_for(current_user: str) -> tuple[str, ...]:
    """The five demo people besides ``current_user``: another typist (``--as DiegoS@…``) swaps places with Adele."""
    candidates = (*DEFAULT_DEMO_USERS, DEFAULT_DEMO_CURRENT_USER)
    return tuple(upn for upn in candidates if upn.lower() != current_user.lower())[:5]


def _person(tenant: Tenant, reference: str) -> TenantUser:
    user = tenant.user(reference)
    if user is None:
        raise ValueError(f"{reference} is not a user of the sandbox tenant")
    return user


def _account(user: TenantUser) -> dict[str, str]:
    given, _, surname = user.display_name.partition(" ")
    return {
        "id": f"29:{user.id}",
        "name": user.display_name,
        "userPrincipleName": user.user_principal_name,  # sic: the Playground's schema spells it so
        "aadObjectId": user.id,
        "givenName": given or user.display_name,
        "surname": surname or user.display_name,
        "email": user.mail or user.user_principal_name,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenant", type=Path, default=DEMO_TENANT_PATH)
    parser.add_argument("--as", dest="current_user", default=DEFAULT_DEMO_CURRENT_USER, help="UPN of the typist")
    parser.add_argument("--out", type=Path, help="write the file here instead of standard output")
    arguments = parser.parse_args(argv)
    try:
        config = playground_config(
            load_tenant(arguments.tenant), arguments.current_user, others_for(arguments.current_user)
        )
    except ValueError as error:
        print(f"playground config: {error}", file=sys.stderr)
        return 2
    text = json.dumps(config, indent=2) + "\n"
    if arguments.out:
        arguments.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
