"""Graph's errors translated into domain errors, and the structured log fields of a Graph call."""

from __future__ import annotations

import logging

import httpx
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from bot.domain.errors import GraphRejected, GraphUnavailable, Refused, Rule, TapError, Throttled

logger = logging.getLogger("bot.adapters.graph")  # the logger name the Graph adapter always used

POLICY_SCOPE_MESSAGE = "Converged UserCredentialPolicy does not allow"
GUEST_MESSAGE = "external guest"
LIFETIME_MESSAGE = "LifetimeInMinutes"


def _fields(operation: str, request_id: str | None, *, status: int | None = None, **more: str) -> dict[str, object]:
    """Structured log fields of one Graph call: what it was for, Graph's request id, the HTTP status."""
    fields: dict[str, object] = {"graph_operation": operation, "graph_request_id": request_id}
    if status is not None:
        fields["graph_status"] = status
    fields.update(more)
    return fields


def _translate(error: ODataError, what: str) -> TapError:
    """Graph's error → a domain error with a sentence the requester can act on (never raw OData)."""
    status = error.response_status_code or 0
    message = (error.error.message if error.error else None) or ""
    request_id = _request_id(error)
    logger.info(
        "Graph refused to %s: status %s, request id %s",
        what,
        status,
        request_id,
        extra=_fields(
            what, request_id, status=status, graph_error_code=(error.error.code if error.error else None) or ""
        ),
    )
    if status == 429:
        return Throttled(_retry_after(error), request_id)
    if POLICY_SCOPE_MESSAGE in message:
        return Refused(
            Rule.OUTSIDE_POLICY_SCOPE,
            "The tenant's Temporary Access Pass policy does not allow a pass for this user "
            "(the policy is off, or the user is not in its scope).",
        )
    if GUEST_MESSAGE in message:
        return Refused(Rule.GUEST, "Temporary Access Passes cannot be issued to external guests.")
    if LIFETIME_MESSAGE in message:
        return Refused(Rule.LIFETIME_RANGE, f"Graph refused the lifetime: {message}")
    if status in (401, 403):
        return GraphRejected(
            f"The bot is not allowed to {what} in Microsoft Graph. An administrator should check the app's "
            f"Graph permissions (see the deployment guide). Request id: {request_id or 'unknown'}.",
            request_id,
        )
    if status >= 500:
        return GraphUnavailable(f"Microsoft Graph could not {what} right now. Try again in a minute.", request_id)
    return GraphRejected(f"Microsoft Graph refused to {what}. Request id: {request_id or 'unknown'}.", request_id)


def _unavailable(what: str, error: httpx.HTTPError) -> GraphUnavailable:
    logger.warning(
        "Graph unreachable while trying to %s: %s",
        what,
        type(error).__name__,
        extra=_fields(what, None, transport_error=type(error).__name__),
    )
    return GraphUnavailable(f"Microsoft Graph did not answer when I tried to {what}. Try again in a minute.")


def _request_id(error: ODataError) -> str | None:
    inner = error.error.inner_error if error.error else None
    if inner and inner.request_id:
        return inner.request_id
    headers = error.response_headers or {}
    return headers.get("request-id")


def _retry_after(error: ODataError) -> float:
    headers = {key.lower(): value for key, value in (error.response_headers or {}).items()}
    try:
        return max(0.0, float(headers.get("retry-after", "5")))
    except ValueError:
        return 5.0
