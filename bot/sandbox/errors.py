"""Graph errors the sandbox answers with, and the choices graph-tap.md leaves unconfirmed."""

from __future__ import annotations

from collections.abc import Mapping

# --- Unconfirmed Graph behaviour: every guess lives here so it can be corrected in one place. ---------

# Status for "policy disabled / user not targeted / user excluded": Graph's status is unconfirmed (400 or
# 403); the message and the lower-case `badRequest` code are what Graph is reported to send.
POLICY_FORBIDS_TAP_STATUS = 403
POLICY_FORBIDS_TAP_CODE = "badRequest"
POLICY_FORBIDS_TAP_MESSAGE = (
    "Converged UserCredentialPolicy does not allow creating or updating this authentication method. "
    "AuthMethodType [TemporaryAccessPass]."
)

# External guests: message from Graph, status unconfirmed.
GUEST_TAP_STATUS = 400
GUEST_TAP_CODE = "badRequest"
GUEST_TAP_MESSAGE = "Temporary Access Pass cannot be added to an external guest user"

# A multi-use pass when the policy forces one-time use: Graph refuses, its exact answer is unconfirmed.
ONE_TIME_REQUIRED_STATUS = 400
ONE_TIME_REQUIRED_CODE = "badRequest"
ONE_TIME_REQUIRED_MESSAGE = (
    "The Temporary Access Pass policy only allows one-time passes; isUsableOnce cannot be false."
)

# GET/DELETE of a pass id the user does not have: status and wording unconfirmed.
TAP_NOT_FOUND_STATUS = 404
TAP_NOT_FOUND_CODE = "itemNotFound"

# $filter (or $count, $search, $orderby) on transitiveMemberOf without `ConsistencyLevel: eventual` and
# `$count=true`: Graph documents both as required (advanced query); the exact refusal is unconfirmed.
ADVANCED_QUERY_REQUIRED_STATUS = 400
ADVANCED_QUERY_REQUIRED_CODE = "Request_UnsupportedQuery"

# PIM for Groups eligibility instances without `$filter` on principalId or groupId: the docs say the filter is
# required; Graph's exact answer is unconfirmed.
PIM_GROUP_FILTER_REQUIRED_STATUS = 400
PIM_GROUP_FILTER_REQUIRED_CODE = "BadRequest"

# How many values `principalId in (...)` takes on roleAssignments: unconfirmed; 15 is the limit Graph documents
# for `in` on other directory queries, and the bot never sends more.
MAX_IN_FILTER_VALUES = 15

# ----------------------------------------------------------------------------------------------------------


class GraphError(Exception):
    """A Graph error answer; the pipeline wraps it in the Graph error envelope."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def resource_not_found(resource_id: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{resource_id}' does not exist or one of its queried reference-property objects are not present.",
    )


def bad_request(message: str, code: str = "BadRequest") -> GraphError:
    return GraphError(400, code, message)


def invalid_lifetime(minimum: int, maximum: int) -> GraphError:
    return GraphError(
        400,
        "badRequest",
        f"Invalid LifetimeInMinutes specified. The valid range between {minimum} and {maximum}.",
    )


def policy_forbids_pass() -> GraphError:
    return GraphError(POLICY_FORBIDS_TAP_STATUS, POLICY_FORBIDS_TAP_CODE, POLICY_FORBIDS_TAP_MESSAGE)


def guest_cannot_have_pass() -> GraphError:
    return GraphError(GUEST_TAP_STATUS, GUEST_TAP_CODE, GUEST_TAP_MESSAGE)


def one_time_pass_required() -> GraphError:
    return GraphError(ONE_TIME_REQUIRED_STATUS, ONE_TIME_REQUIRED_CODE, ONE_TIME_REQUIRED_MESSAGE)


def pass_not_found(method_id: str) -> GraphError:
    return GraphError(
        TAP_NOT_FOUND_STATUS,
        TAP_NOT_FOUND_CODE,
        f"The Temporary Access Pass method '{method_id}' was not found for this user.",
    )


def too_many_requests(retry_after_s: int) -> GraphError:
    return GraphError(
        429,
        "TooManyRequests",
        "Too many requests are being sent by this application. Retry after the time given in Retry-After.",
        headers={"Retry-After": str(retry_after_s)},
    )


def unknown_segment(segment: str) -> GraphError:
    return bad_request(f"Resource not found for the segment '{segment}'.")


def method_not_allowed() -> GraphError:
    return GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")


def malformed_json_body() -> GraphError:
    return bad_request(
        "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of "
        "valid JSON format."
    )


DEFAULT_CODES_BY_STATUS: Mapping[int, str] = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "Authorization_RequestDenied",
    404: "Request_ResourceNotFound",
    409: "Conflict",
    429: "TooManyRequests",
    500: "generalException",
    502: "BadGateway",
    503: "serviceNotAvailable",
    504: "gatewayTimeout",
}


def default_code_for(status: int) -> str:
    return DEFAULT_CODES_BY_STATUS.get(status, "UnknownError")


def advanced_query_required() -> GraphError:
    return GraphError(
        ADVANCED_QUERY_REQUIRED_STATUS,
        ADVANCED_QUERY_REQUIRED_CODE,
        "This query needs the advanced query capabilities: send the header 'ConsistencyLevel: eventual' "
        "and '$count=true'.",
    )


def premium_license_required() -> GraphError:
    """Graph's answer on PIM endpoints in a tenant without Entra ID P2 or ID Governance (seen in the wild)."""
    return GraphError(
        400,
        "AadPremiumLicenseRequired",
        "The tenant needs to have Microsoft Entra ID P2 or Microsoft Entra ID Governance license.",
    )


def pim_group_filter_required() -> GraphError:
    return GraphError(
        PIM_GROUP_FILTER_REQUIRED_STATUS,
        PIM_GROUP_FILTER_REQUIRED_CODE,
        "This request requires $filter on principalId or groupId (eq).",
    )
