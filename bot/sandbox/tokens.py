"""The sandbox's own Entra: the keys and claims of the user tokens it issues (issue 14, delegated mode).

Three kinds of token, shaped like Entra's (v2 for the Teams SSO and API tokens, v1 for Graph, as Entra issues them):
- a **Teams SSO token** for the bot's API (`aud` = its App ID URI or app id, `scp` = `access_as_user`), which a
  Teams client hands the bot in `signin/tokenExchange`;
- a **Graph token** for a technician (`aud` = Graph, `scp` = the delegated permissions, `idtyp` = `user`), which the
  token service hands the bot after its on-behalf-of exchange, and which the sandbox's Graph checks on every write.

They are signed with a key that lives only in this sandbox process (HS256: nothing outside the sandbox verifies
them; the bot treats them as opaque strings, as it must treat Entra's).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import jwt

GRAPH_AUDIENCE = "https://graph.microsoft.com"
SSO_SCOPE = "access_as_user"
# The delegated permissions a technician's Graph token carries when the OAuth connection asks for them.
DEFAULT_GRAPH_SCOPES = ("UserAuthenticationMethod.ReadWrite.All",)
# Which scopes allow writing another user's Temporary Access Pass (graph-tap.md; sso-obo.md §5).
WRITE_SCOPES = frozenset({"UserAuthenticationMethod.ReadWrite.All", "UserAuthMethod-TAP.ReadWrite.All"})
_ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The token is not one this sandbox issued, is not for the audience asked, or has expired.

    `expired` tells the two apart: Graph answers both 401 InvalidAuthenticationToken, with different messages.
    """

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class UserClaims:
    """What a user token says: who, in which tenant, for whom, with which scopes, until when."""

    object_id: str
    tenant_id: str
    audience: str
    scopes: frozenset[str]
    app_id: str
    expires_at: datetime
    token_id: str

    def has_any_scope(self, wanted: frozenset[str]) -> bool:
        return bool(self.scopes & wanted)


@dataclass
class TokenKeys:
    """The sandbox's signing key. One per sandbox process; never written anywhere."""

    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    def mint(
        self,
        *,
        object_id: str,
        tenant_id: str,
        audience: str,
        scopes: tuple[str, ...] | frozenset[str],
        app_id: str,
        now: datetime,
        lifetime: timedelta,
        version: str = "2.0",
    ) -> str:
        claims = {
            "aud": audience,
            "iss": f"https://login.microsoftonline.com/{tenant_id}/v2.0"
            if version == "2.0"
            else f"https://sts.windows.net/{tenant_id}/",
            "tid": tenant_id,
            "oid": object_id,
            "sub": object_id,
            "scp": " ".join(sorted(scopes)),
            "idtyp": "user",
            "ver": version,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int((now + lifetime).timestamp()),
            "uti": uuid.uuid4().hex,
        }
        claims["azp" if version == "2.0" else "appid"] = app_id
        return jwt.encode(claims, self.key, algorithm=_ALGORITHM)

    def verify(self, token: str, *, audiences: tuple[str, ...], now: datetime) -> UserClaims:
        """The token's claims, when this sandbox signed it for one of `audiences` and it has not expired at `now`
        (the sandbox's clock, which tests move forward)."""
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[_ALGORITHM],
                audience=list(audiences),
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.InvalidAudienceError:
            raise InvalidToken("The token is for another audience.") from None
        except jwt.PyJWTError:
            raise InvalidToken("The token is not one this tenant issued.") from None
        expires_at = datetime.fromtimestamp(int(claims.get("exp", 0)), tz=now.tzinfo)
        if expires_at <= now:
            raise InvalidToken("Lifetime validation failed, the token is expired.", expired=True)
        if claims.get("idtyp") != "user" or not claims.get("oid") or not claims.get("tid"):
            raise InvalidToken("The token does not name a user.")
        return UserClaims(
            object_id=str(claims["oid"]).lower(),
            tenant_id=str(claims["tid"]).lower(),
            audience=str(claims["aud"]),
            scopes=frozenset(str(claims.get("scp", "")).split()),
            app_id=str(claims.get("azp") or claims.get("appid") or ""),
            expires_at=expires_at,
            token_id=str(claims.get("uti", "")),
        )
