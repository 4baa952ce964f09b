"""What a Graph call keeps of an answer, and the retry handler's delay: the same as kiota's handlers give, without the
work they do for nothing (graph_client.ResponseHeadersInspected, graph_adapter.Retries)."""

from __future__ import annotations

import random
import uuid

import httpx
import pytest
from kiota_abstractions.headers_collection import HeadersCollection
from kiota_http.middleware import HeadersInspectionHandler, RetryHandler
from kiota_http.middleware.middleware import REQUEST_OPTIONS_KEY
from kiota_http.middleware.options import HeadersInspectionHandlerOption, RetryHandlerOption

from bot.adapters.graph_adapter import Retries
from bot.adapters.graph_calls import GraphCalls, _Call, client_request_id
from bot.adapters.graph_client import (
    SDK_RETRY_STATUS_CODES,
    HeadersInspected,
    ResponseHeadersInspected,
    build_graph_client,
)
from bot.settings import GraphMode, GraphSettings

ANSWER_HEADERS = [
    ("Content-Type", "application/json"),
    ("Request-Id", "r1"),
    ("client-request-id", "c1"),
    ("x-ms-ags-diagnostic", '{"ServerInfo":{}}'),
    ("Strict-Transport-Security", "max-age=31536000"),
]


class Answering(httpx.AsyncBaseTransport):
    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self.headers = headers

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=self.headers, request=request)


async def captured(
    handler: HeadersInspectionHandler, option: HeadersInspectionHandlerOption, headers: list[tuple[str, str]]
) -> HeadersCollection:
    request = httpx.Request("GET", "https://graph.microsoft.com/v1.0/me")
    request.extensions[REQUEST_OPTIONS_KEY] = {HeadersInspectionHandlerOption.get_key(): option}
    await handler.send(request, Answering(headers))
    return option.response_headers


@pytest.mark.parametrize(
    "headers", [ANSWER_HEADERS, [*ANSWER_HEADERS, ("request-id", "r2")], ANSWER_HEADERS[:1], []], ids=str
)
async def test_a_calls_request_id_is_the_one_kiotas_handler_captures(headers: list[tuple[str, str]]) -> None:
    kiotas = await captured(HeadersInspectionHandler(), HeadersInspectionHandlerOption(False, True), headers)
    ours = await captured(HeadersInspected(), ResponseHeadersInspected("request-id"), headers)
    assert ours.get("request-id") == kiotas.get("request-id")
    assert set(ours.keys()) <= {"request-id"}  # nothing else copied


async def test_a_call_reads_graphs_request_id_from_the_answer() -> None:
    call = _Call()
    await captured(HeadersInspected(), call.headers, ANSWER_HEADERS)
    assert call.request_id == "r1"


async def test_a_plain_option_still_gets_every_header_as_kiotas_handler_gives_them() -> None:
    kiotas = await captured(HeadersInspectionHandler(), HeadersInspectionHandlerOption(False, True), ANSWER_HEADERS)
    ours = await captured(HeadersInspected(), HeadersInspectionHandlerOption(False, True), ANSWER_HEADERS)
    assert ours.get_all() == kiotas.get_all() and len(ours.keys()) == len(ANSWER_HEADERS)


@pytest.mark.parametrize(
    ("status", "retry_after"), [(503, "3"), (504, None), (503, "0"), (429, "2"), (200, None), (404, "3")]
)
def test_the_retry_delay_is_kiotas_for_every_status_retried(status: int, retry_after: str | None) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}
    response = httpx.Response(status, headers=headers)
    ours, kiotas = Retries(RetryHandlerOption()), RetryHandler(RetryHandlerOption())
    ours.retry_on_status_codes = kiotas.retry_on_status_codes = SDK_RETRY_STATUS_CODES
    random.seed(7)
    expected = kiotas.get_delay_time(1, response, 1.0)
    random.seed(7)
    delay = ours.get_delay_time(1, response, 1.0)
    if status in SDK_RETRY_STATUS_CODES:
        assert delay == expected
    else:  # not retried: kiota's delay is never used
        assert delay == 0.0
        assert not kiotas.should_retry(httpx.Request("GET", "https://g/"), RetryHandlerOption(), response)


async def test_a_users_builder_per_client_gives_each_user_the_builder_msgraph_gives() -> None:
    first, first_http = build_graph_client(GraphSettings(GraphMode.SANDBOX), "http://127.0.0.1:1/v1.0")
    second, second_http = build_graph_client(GraphSettings(GraphMode.SANDBOX), "http://127.0.0.1:2/v1.0")
    try:
        calls = GraphCalls()
        calls._client = first
        built = [calls._user(user).path_parameters for user in ("a", "b@contoso.com", "a")]
        assert built == [first.users.by_user_id(user).path_parameters for user in ("a", "b@contoso.com", "a")]
        assert built[0] is not built[2]  # each user's own parameters
        calls._client = second  # another client: its own builder
        assert calls._user("a").path_parameters == second.users.by_user_id("a").path_parameters != built[0]
    finally:
        await first_http.aclose()
        await second_http.aclose()


def test_a_client_request_id_is_a_random_version_4_uuid_as_uuid4_writes_it() -> None:
    ids = [client_request_id() for _ in range(2_000)]
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(value)
        assert str(parsed) == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    # Every random digit takes every value (the version digit and the variant's two fixed bits aside).
    assert {value[14] for value in ids} == {"4"} and {value[19] for value in ids} == set("89ab")
    assert all({value[index] for value in ids} == set("0123456789abcdef") for index in (0, 9, 15, 20, 35))
