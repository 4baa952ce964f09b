"""Helpers for the sandbox tests: demo-tenant identities and a compact HTTP call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from aiohttp import ClientSession

FROZEN_NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

ADELE = "AdeleV@contoso.onmicrosoft.com"
ALEX = "AlexW@contoso.onmicrosoft.com"
MEGAN = "MeganB@contoso.onmicrosoft.com"
LEE = "LeeG@contoso.onmicrosoft.com"
LIDIA = "LidiaH@contoso.onmicrosoft.com"
LYNNE = "LynneR@contoso.onmicrosoft.com"
DIEGO = "DiegoS@contoso.onmicrosoft.com"
ISAIAH = "IsaiahL@contoso.onmicrosoft.com"
BREAK_GLASS = "breakglass01@contoso.onmicrosoft.com"
NESTOR_DISABLED = "NestorW@contoso.onmicrosoft.com"
JANE_GUEST = "jane_fabrikam.com#EXT#@contoso.onmicrosoft.com"
PRADEEP_EXCLUDED = "PradeepG@contoso.onmicrosoft.com"
JONI_EXPIRED_PASS = "JoniS@contoso.onmicrosoft.com"

ADELE_ID = "884f0a7d-eeec-4d58-b136-0634982d6c8f"
ALEX_ID = "6601a486-a875-4902-9a3b-12efd11431b5"
MEGAN_ID = "6832c635-8862-4324-872b-4990d834254a"
LEE_ID = "9d3562ea-aefc-4b97-9721-5e506d279f43"
DIEGO_ID = "a16c0c60-bbb6-433c-b4da-464eebbc0e8b"
ISAIAH_ID = "23af9669-041d-4e33-95bc-75a043dc44c2"
PRADEEP_ID = "ece8410d-fc08-4905-b6fd-ce58a17e5519"

TAP_OPERATORS_ID = "a7ce04ee-d04a-4705-a2b0-6143136ea70f"
SERVICE_DESK_ID = "ad5728c8-eaa1-4396-b4ca-de298a97a04a"
PROTECTED_ACCOUNTS_ID = "bd7c3ef1-9245-4256-8aac-1e552b66595b"
TAP_EXCLUDED_ID = "ea2d260f-cb5a-4f87-a2a2-07d306e28184"
GLOBAL_ADMINISTRATOR_ROLE_ID = "62e90394-69f5-4237-9190-012177145e10"


def passes_path(user: str) -> str:
    return f"/v1.0/users/{quote_segment(user)}/authentication/temporaryAccessPassMethods"


def quote_segment(value: str) -> str:
    return value.replace("#", "%23")


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def error(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.body["error"])


async def call(
    session: ClientSession,
    method: str,
    path: str,
    json: object = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    async with session.request(method, path, json=json, headers=headers) as response:
        body = await response.json(content_type=None) if await response.read() else None
        return Answer(response.status, body, dict(response.headers))


# People who hold or may activate a directory role by a path other than a direct, active assignment.
CHRISTIE_ID = "3f8e619a-79e9-4d00-bbb5-dc64d5e6fcbd"  # member of role-assignable "Helpdesk Admins"
GRADY_ID = "f3ebd287-8aba-4215-a442-62511e3584a3"  # member of "Paris Helpdesk" (AU-scoped role)
HENRIETTA_ID = "ddbd5305-7189-4fb1-8365-a655321e5380"  # eligible Global Administrator
IRVIN_ID = "28c973a3-ff36-4c20-a78a-2b5e9b96e2b5"  # member of "Security Responders" (eligible role)
JOHANNA_ID = "f633f7a1-46a4-41ff-b0a7-f712abdad616"  # eligible member of "Helpdesk Admins" (PIM for Groups)
MIRIAM_ID = "0b8df986-914e-4a37-9b65-e000f7cd5fa3"  # User Administrator scoped to the "Paris office" unit
HELPDESK_ADMINS_ID = "ad5f456b-e5ec-4b33-a547-f261cb3a71d1"
PARIS_HELPDESK_ID = "b7bea0e0-dd47-4a3a-a1f5-d2878fa46bdd"
SECURITY_RESPONDERS_ID = "21ab2cff-3026-4c46-8578-27cba81a4826"
PARIS_UNIT_ID = "c6173151-0f93-4734-813e-1176caae1b0f"
HELPDESK_ADMINISTRATOR_ROLE_ID = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
SECURITY_ADMINISTRATOR_ROLE_ID = "194ae4cb-b126-40b2-bd5b-6091b380977d"
