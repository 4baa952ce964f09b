"""Graph's JSON `$batch`: several independent requests the SDK built, sent as one HTTP round trip.

`POST /$batch` holds at most 20 requests ("Combine multiple HTTP requests using JSON batching",
https://learn.microsoft.com/graph/json-batching). Graph evaluates each item against its throttling limits on its own,
and so does the pacer (graph_costs.request_charges counts a `$batch` item by item). Every item keeps the URL, query
and headers the SDK's request builder gave it, so it asks Graph exactly what the single request asks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from kiota_abstractions.base_request_builder import BaseRequestBuilder
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.models.o_data_errors.inner_error import InnerError
from msgraph.generated.models.o_data_errors.main_error import MainError
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from bot.adapters.graph_calls import PIM_UNLICENSED_CODE, GraphCalls
from bot.adapters.graph_client import SDK_RETRY_STATUS_CODES
from bot.adapters.graph_costs import item_charges
from bot.adapters.graph_errors import _translate
from bot.adapters.graph_pacing import batch_charges_handed
from bot.adapters.graph_urls import expanded_url

BATCH_LIMIT = 20
_JSON = "application/json"


@dataclass(frozen=True)
class BatchItem:
    """One request of a batch: its id, the request the SDK's builder made, and a JSON body for a POST."""

    id: str
    request: RequestInformation
    body: Any = None


def post_without_body(builder: BaseRequestBuilder, configuration: RequestConfiguration[Any]) -> RequestInformation:
    """The POST a builder's `to_post_request_information` makes, less the body it would serialize with kiota: a batch
    item carries its JSON body itself (`BatchItem.body`)."""
    request = RequestInformation(Method.POST, builder.url_template, builder.path_parameters)
    request.configure(configuration)
    return request


@dataclass(frozen=True)
class ItemAnswer:
    """Graph's answer to one item: status, headers, and the JSON body (None when there is none)."""

    status: int
    headers: Mapping[str, str]
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error_code(self) -> str:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        code = cast(dict[str, Any], error).get("code") if isinstance(error, dict) else None
        return str(code or "")

    def odata_error(self) -> ODataError:
        """The ODataError the SDK raises for the same answer to a single request."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        fields = cast(dict[str, Any], error) if isinstance(error, dict) else {}
        inner = fields.get("innerError")
        inner_fields = cast(dict[str, Any], inner) if isinstance(inner, dict) else {}
        request_id = inner_fields.get("request-id") or inner_fields.get("requestId")
        main = MainError(
            code=str(fields.get("code") or "") or None,
            message=str(fields.get("message") or "") or None,
            inner_error=InnerError(request_id=str(request_id)) if request_id else None,
        )
        translated = ODataError(error=main)
        translated.response_status_code = self.status
        translated.response_headers = dict(self.headers)
        return translated


class SendAlone(Exception):
    """The item is to be sent again as its own request: Graph throttled it (the pacer then waits out Retry-After and
    resends it, as for any request), answered a status the SDK retries, or has more pages."""


def single_page(answer: ItemAnswer | None, what: str, *, pim: bool = False) -> dict[str, Any]:
    """An item's answer as the single request's would end: its one page; an empty one for Graph's "no PIM licence"
    on a PIM read; the domain error the single request raises for a refusal (graph_errors._translate, same sentence);
    SendAlone when the single request would have been sent again (429, 503, 504) or read further pages."""
    if answer is None:
        raise SendAlone
    if answer.ok:
        if not isinstance(answer.body, dict):
            raise SendAlone
        body = cast(dict[str, Any], answer.body)
        if body.get("@odata.nextLink"):
            raise SendAlone
        return body
    if pim and answer.error_code == PIM_UNLICENSED_CODE:
        return {"value": []}
    if answer.status == 429 or answer.status in SDK_RETRY_STATUS_CODES:
        raise SendAlone
    raise _translate(answer.odata_error(), what)


async def send_batch(calls: GraphCalls, what: str, items: Sequence[BatchItem]) -> dict[str, ItemAnswer]:
    """Sends the items as one `POST /$batch` and returns each item's answer by id. A failure of the batch itself
    (its status, Graph unreachable, an unreadable answer) raises the domain error a single request's would."""
    if not 0 < len(items) <= BATCH_LIMIT:
        raise ValueError(f"a $batch holds 1 to {BATCH_LIMIT} requests, not {len(items)}")
    adapter = calls._client.request_adapter
    base = adapter.base_url.rstrip("/")
    rendered = [_item_json(item, base) for item in items]
    body = json.dumps({"requests": rendered}).encode()
    # What the pacing transport charges each item: worked out from the items here, not parsed back from the body.
    charges = [(str(entry["id"]), item_charges(entry["method"], entry["url"])) for entry in rendered]

    def batch_request(configuration: RequestConfiguration[Any]) -> RequestInformation:
        request = RequestInformation(Method.POST, "{+baseurl}/$batch", {})
        request.configure(configuration)
        request.set_stream_content(body, _JSON)
        return request

    with batch_charges_handed(body, charges):
        answer = await calls._read_json(what, batch_request)
    found: dict[str, ItemAnswer] = {}
    for response in (answer or {}).get("responses") or []:
        if not isinstance(response, dict):
            continue
        entry = cast(dict[str, Any], response)
        raw_headers = entry.get("headers")
        headers = (
            {str(name).lower(): str(value) for name, value in cast(dict[str, Any], raw_headers).items()}
            if isinstance(raw_headers, dict)
            else {}
        )
        status = entry.get("status")
        found[str(entry.get("id"))] = ItemAnswer(status if isinstance(status, int) else 0, headers, entry.get("body"))
    return found


def _item_json(item: BatchItem, base: str) -> dict[str, Any]:
    request = item.request
    request.path_parameters = {**request.path_parameters, "baseurl": base}
    url = expanded_url(request) or str(request.url)
    if not url.startswith(base):
        raise ValueError("a $batch item must be a request to the client's own Graph endpoint")
    headers = {
        name: ", ".join(sorted(values))
        for name, values in request.headers.get_all().items()
        if name.lower() not in ("accept", "content-type")
    }
    rendered: dict[str, Any] = {
        "id": item.id,
        "method": str(request.http_method.value if request.http_method else "GET"),
        "url": url[len(base) :] or "/",
    }
    if item.body is not None:
        headers["Content-Type"] = _JSON
        rendered["body"] = item.body
    if headers:
        rendered["headers"] = headers
    return rendered
