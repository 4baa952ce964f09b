"""Sign-in methods users register while the sandbox runs (follow-through, issue 12 item 4), with createdDateTime.

Graph gives every authenticationMethod a createdDateTime in v1.0; for Microsoft Authenticator it is null unless the
app is registered for passwordless phone sign-in (microsoftAuthenticatorAuthenticationMethod resource type), which
``register`` reproduces with ``passwordless=False``. Methods listed in the tenant file without a createdDateTime get
SEEDED_METHODS_CREATED (Authenticator: null), so a pass issued in the sandbox always starts after them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from bot.sandbox.clock import format_graph_datetime
from bot.sandbox.tenant_records import AUTHENTICATION_METHOD_ODATA_TYPES, AuthenticationMethod

SEEDED_METHODS_CREATED = datetime(2025, 1, 1, 8, 0, tzinfo=UTC)
AUTHENTICATOR = "microsoftAuthenticator"
# What a user can register for themselves after signing in with a pass (the strong ones follow-through looks for,
# and a few others so a test can show they are not counted).
REGISTRABLE_TYPES = (
    "microsoftAuthenticator",
    "fido2",
    "windowsHelloForBusiness",
    "platformCredential",
    "phone",
    "email",
)
DISPLAY_NAMES = {
    "microsoftAuthenticator": "iPhone",
    "fido2": "YubiKey 5 NFC",
    "windowsHelloForBusiness": "LAPTOP-7Q2",
    "platformCredential": "MacBook Pro",
}


class Registrations:
    def __init__(self) -> None:
        self._by_user: dict[str, list[AuthenticationMethod]] = {}

    def of_user(self, user_id: str) -> tuple[AuthenticationMethod, ...]:
        return tuple(self._by_user.get(user_id, ()))

    def register(
        self, user_id: str, method_type: str, *, at: datetime, passwordless: bool = True
    ) -> AuthenticationMethod:
        if method_type not in REGISTRABLE_TYPES:
            raise ValueError(f"type must be one of {', '.join(REGISTRABLE_TYPES)}")
        created = None if method_type == AUTHENTICATOR and not passwordless else format_graph_datetime(at)
        properties: dict[str, object] = {"createdDateTime": created}
        if method_type in DISPLAY_NAMES:
            properties["displayName"] = DISPLAY_NAMES[method_type]
        if method_type == "phone":
            properties.update({"phoneNumber": "+1 4255550199", "phoneType": "mobile"})
        if method_type == "email":
            properties["emailAddress"] = "someone@example.com"
        method = AuthenticationMethod(str(uuid.uuid4()), method_type, properties)
        self._by_user.setdefault(user_id, []).append(method)
        return method

    def clear(self) -> None:
        self._by_user.clear()


def with_created_date_time(method: AuthenticationMethod) -> AuthenticationMethod:
    """A tenant file's method as Graph lists it: with a createdDateTime (see the module's note)."""
    if "createdDateTime" in method.properties:
        return method
    created = None if method.method_type == AUTHENTICATOR else format_graph_datetime(SEEDED_METHODS_CREATED)
    return AuthenticationMethod(method.id, method.method_type, {**method.properties, "createdDateTime": created})


assert all(kind in AUTHENTICATION_METHOD_ODATA_TYPES for kind in REGISTRABLE_TYPES)
