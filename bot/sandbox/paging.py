"""Graph's server-driven paging for the sandbox's collections: `$top`, then `@odata.nextLink` with a `$skiptoken`."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlencode

from bot.sandbox.errors import bad_request
from bot.sandbox.routing import GraphRequest

MAX_PAGE_SIZE = 999
DEFAULT_PAGE_SIZE = 100


def page(request: GraphRequest, items: Sequence[object], *, count: int | None = None) -> dict[str, object]:
    """One page of `items` at `$skiptoken` (an offset here; opaque to callers), with Graph's `@odata.nextLink`."""
    raw_top = request.query.get("$top", str(DEFAULT_PAGE_SIZE))
    if not raw_top.isdigit() or not 1 <= int(raw_top) <= MAX_PAGE_SIZE:
        raise bad_request(f"Invalid page size specified: '{raw_top}'. Must be between 1 and {MAX_PAGE_SIZE}.")
    top = int(raw_top)
    token = request.query.get("$skiptoken", "0")
    if not token.isdigit():
        raise bad_request(f"Invalid $skiptoken '{token}'.")
    start = int(token)
    body: dict[str, object] = {}
    if count is not None:
        body["@odata.count"] = count
    body["value"] = list(items[start : start + top])
    if start + top < len(items):
        query = {**request.query, "$skiptoken": str(start + top)}
        body["@odata.nextLink"] = f"{request.base_url}{request.path}?{urlencode(query)}"
    return body
