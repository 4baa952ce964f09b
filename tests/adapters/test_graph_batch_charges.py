"""What a `$batch` counts toward, worked out once: send_batch hands the pacing transport each item's charges from the
items it rendered (graph_costs.item_charges, the same function that reads them from a body), and the transport
parses only a `$batch` body it was not handed (built elsewhere, or changed on the way)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any

import httpx
import pytest
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware import ParametersNameDecodingHandler
from kiota_http.middleware.options import ParametersNameDecodingHandlerOption

import bot.adapters.graph_batch as graph_batch
import bot.adapters.graph_pacing as graph_pacing
from bot.adapters.clock import SystemClock
from bot.adapters.graph import GraphGateway, build_graph_client
from bot.adapters.graph_costs import (
    APP_WRITES,
    AUTH_METHOD_READS,
    AUTH_METHOD_WRITES,
    RESOURCE_UNITS,
    TENANT_WRITES,
    batch_item_charges,
    graph_limits,
    request_charges,
)
from bot.adapters.graph_pacing import ItemCharges, PacedTransport, batch_charges_handed
from bot.adapters.graph_urls import expanded_url
from bot.domain.pacer import Lane, Pacer
from bot.sandbox.server import start_sandbox
from bot.sandbox.tenant import parse_tenant
from bot.settings import DEMO_TENANT_FILE, GraphMode, GraphSettings

DEMO = json.loads(DEMO_TENANT_FILE.read_text(encoding="utf-8"))
LEE = "9d3562ea-aefc-4b97-9721-5e506d279f43"  # demo: an ordinary member, no role
GROUP_IDS = [str(group["id"]) for group in DEMO["groups"]]


def _total(items: ItemCharges) -> dict[str, int]:
    total: dict[str, int] = {}
    for _, charges in items:
        for name, amount in charges.items():
            total[name] = total.get(name, 0) + amount
    return total


class AdmitSpy:
    """Records the charges of every admission the pacer is asked for."""

    def __init__(self, pacer: Pacer) -> None:
        self.admitted: list[dict[str, int]] = []
        admit = pacer.admit

        async def recording(charges: dict[str, int], lane: Lane, **more: Any) -> Any:
            self.admitted.append(dict(charges))
            return await admit(charges, lane, **more)

        pacer.admit = recording  # type: ignore[method-assign]


async def test_send_batch_hands_the_pacer_the_charges_its_body_would_give(monkeypatch: pytest.MonkeyPatch) -> None:
    handed: list[tuple[bytes, ItemCharges]] = []

    @contextmanager
    def recording(body: bytes, items: ItemCharges) -> Iterator[None]:
        handed.append((body, items))
        with batch_charges_handed(body, items):
            yield

    parsed: list[bytes | None] = []

    def parsing(body: bytes | None) -> ItemCharges | None:
        parsed.append(body)
        return batch_item_charges(body)

    monkeypatch.setattr(graph_batch, "batch_charges_handed", recording)
    monkeypatch.setattr(graph_pacing, "batch_item_charges", parsing)
    sandbox = await start_sandbox(parse_tenant(DEMO))
    pacer = Pacer(graph_limits())
    spy = AdmitSpy(pacer)
    client, http = build_graph_client(
        GraphSettings(GraphMode.SANDBOX, timeout_seconds=5), sandbox.base_url, pacer=pacer
    )
    sent: list[bytes] = []

    async def record(request: httpx.Request) -> None:
        if request.url.path.endswith("/$batch"):
            sent.append(request.content)

    http.event_hooks["request"].append(record)
    try:
        await GraphGateway(client, SystemClock()).target_reading(LEE, GROUP_IDS, with_methods=True)
    finally:
        await http.aclose()
        await sandbox.close()

    assert sent and [body for body, _ in handed] == sent
    for body, items in handed:
        assert items == batch_item_charges(body)  # each item's id and request_charges, in the body's order
        assert len(items) == len(json.loads(body)["requests"])
        assert _total(items) in spy.admitted
    assert any(AUTH_METHOD_READS in charges for _, items in handed for _, charges in items)
    assert parsed == []  # the transport did not parse a body it was handed the charges of


class Answering(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=httpx.ByteStream(b'{"responses": []}'), request=request)


BATCH = json.dumps(
    {
        "requests": [
            {"id": "a", "method": "GET", "url": "/users/u1/authentication/methods"},
            {"id": "b", "method": "POST", "url": "/users/u1/authentication/temporaryAccessPassMethods"},
            {"id": "c", "method": "GET", "url": "/users?$select=id&$top=5"},
        ]
    }
).encode()


async def test_a_batch_built_elsewhere_is_charged_from_its_body() -> None:
    pacer = Pacer(graph_limits())
    spy = AdmitSpy(pacer)
    async with httpx.AsyncClient(transport=PacedTransport(pacer, Answering())) as client:
        await client.post("https://graph.microsoft.com/v1.0/$batch", content=BATCH)
        # Charges handed for another body (not this one) are not taken for it.
        with batch_charges_handed(b'{"requests": []}', [("x", {RESOURCE_UNITS: 100})]):
            await client.post("https://graph.microsoft.com/v1.0/$batch", content=BATCH)
    expected = {RESOURCE_UNITS: 3, APP_WRITES: 1, TENANT_WRITES: 1, AUTH_METHOD_READS: 1, AUTH_METHOD_WRITES: 1}
    assert request_charges("POST", "/v1.0/$batch", {}, BATCH) == expected
    assert spy.admitted == [expected, expected]


async def test_charges_handed_for_the_body_sent_are_the_ones_admitted() -> None:
    pacer = Pacer(graph_limits())
    spy = AdmitSpy(pacer)
    handed: ItemCharges = [("a", {RESOURCE_UNITS: 7})]
    async with httpx.AsyncClient(transport=PacedTransport(pacer, Answering())) as client:
        with batch_charges_handed(BATCH, handed):
            await client.post("https://graph.microsoft.com/v1.0/$batch", content=BATCH)
        await client.post("https://graph.microsoft.com/v1.0/$batch", content=BATCH)  # the context is left: parsed
    assert spy.admitted == [{RESOURCE_UNITS: 7}, request_charges("POST", "/v1.0/$batch", {}, BATCH)]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1.0/me", {RESOURCE_UNITS: 2}),
        ("/v1.0/me/authentication", {RESOURCE_UNITS: 1}),  # two segments: not counted as a method read
        ("/v1.0/me/authentication/methods", {RESOURCE_UNITS: 1, AUTH_METHOD_READS: 1}),
        ("/v1.0/Users/x/Authentication/methods", {RESOURCE_UNITS: 1, AUTH_METHOD_READS: 1}),
        ("/v1.0/users/x/authenticationMethods", {RESOURCE_UNITS: 1}),
        ("/beta/users/x/microsoft.graph.user/memberOf", {RESOURCE_UNITS: 2}),
        ("/v1.0/users/x/transitiveMemberOf/graph.group", {RESOURCE_UNITS: 2}),
        ("/v1.0/groups/g/members/u", {RESOURCE_UNITS: 1}),
        ("/v1.0/users/microsoft.graph.user", {RESOURCE_UNITS: 2}),
    ],
)
def test_paths_are_shaped_as_graphs_table_reads_them(path: str, expected: dict[str, int]) -> None:
    assert request_charges("GET", path, {}) == expected


class Colour(str, Enum):  # noqa: UP042  # as msgraph generates its enums
    RED = "red,ish"
    BLUE = "blue"


@pytest.mark.parametrize(
    "select",
    [
        ["id", "displayName"],
        ["id", "display name"],
        ["a,b", "c"],
        ["", "x"],
        ["é", "x/y"],
        [Colour.BLUE, "id"],
        [Colour.RED, "id"],
        ["id", True, 3],
    ],
)
def test_a_list_query_value_is_expanded_as_kiota_expands_it(select: list[Any]) -> None:
    request = RequestInformation(Method.GET, "{+baseurl}/users{?%24select,%24top}")
    request.path_parameters = {"baseurl": "https://graph.microsoft.com/v1.0"}
    request.query_parameters = {"%24select": select}
    start, _, query = request.url.partition("?")
    option = ParametersNameDecodingHandlerOption()
    kiotas = f"{start}?{ParametersNameDecodingHandler().decode_uri_encoded_string(query, option.characters_to_decode)}"
    assert expanded_url(request) in (kiotas, None)
    if all(type(item) is str for item in select):
        assert expanded_url(request) == kiotas


@pytest.mark.parametrize("base", ["https://graph.microsoft.com/v1.0", "https://graph.microsoft.com/v 1.0"])
@pytest.mark.parametrize("user_id", ["9d3562ea-aefc-4b97-9721-5e506d279f43", "MeganB@contoso.com", "a b/c", "é", ""])
def test_a_path_value_is_expanded_as_kiota_expands_it(base: str, user_id: str) -> None:
    request = RequestInformation(Method.GET, "{+baseurl}/users/{user%2Did}/memberOf")
    request.path_parameters = {"baseurl": base, "user%2Did": user_id}
    assert expanded_url(request) == request.url
    assert expanded_url(request) == request.url  # the base URL's expansion, cached, is the same
