"""The hot Graph calls read their answers with json.loads into the bot's types: shapes real Graph sends that the
sandbox does not (7-digit fractions, a missing field, a wrong type, an unexpected object), and that errors still
arrive as ODataError through the SDK's pipeline (retry handler, headers, request ids)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
from aiohttp import web

from bot.adapters.clock import SystemClock
from bot.adapters.graph import GraphGateway, build_graph_client
from bot.adapters.graph_json import _datetime
from bot.adapters.graph_pacing import MAX_PACED_RETRIES
from bot.domain.errors import GraphRejected, Throttled
from bot.domain.model import DirectoryUser, UserType
from bot.settings import GraphMode, GraphSettings

Answer = Callable[[web.Request], web.Response]


@pytest.fixture
async def fake_graph() -> AsyncIterator[tuple[dict[str, Answer], list[web.Request], GraphGateway]]:
    """A one-route-per-path Graph: tests put a function per path (relative to /v1.0) in the dict."""
    answers: dict[str, Answer] = {}
    seen: list[web.Request] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request)
        path = request.path.removeprefix("/v1.0")
        if path not in answers:
            return web.json_response({"error": {"code": "Request_ResourceNotFound", "message": path}}, status=404)
        return answers[path](request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    client, http = build_graph_client(
        GraphSettings(GraphMode.ANONYMOUS, timeout_seconds=5), f"http://127.0.0.1:{port}/v1.0"
    )

    async def no_sleep(_: float) -> None:
        return None

    try:
        yield answers, seen, GraphGateway(client, SystemClock(), sleep=no_sleep)
    finally:
        await http.aclose()
        await runner.cleanup()


def body(value: object, status: int = 200, **headers: str) -> Answer:
    return lambda _request: web.Response(
        text=json.dumps(value), status=status, content_type="application/json", headers=headers
    )


def test_graph_datetimes() -> None:
    assert _datetime("2026-11-02T09:00:00Z") == datetime(2026, 11, 2, 9, tzinfo=UTC)
    assert _datetime("2026-11-02T09:00:00.1234567Z") == datetime(2026, 11, 2, 9, 0, 0, 123456, tzinfo=UTC)
    assert _datetime("2026-11-02T09:00:00.5+01:00") == datetime(2026, 11, 2, 8, 0, 0, 500000, tzinfo=UTC)
    assert _datetime("2027-01-04") == datetime(2027, 1, 4)
    assert [_datetime(value) for value in (None, "", "not a date", 42)] == [None, None, None, None]


async def test_user_fields_missing_or_of_the_wrong_type(fake_graph) -> None:  # type: ignore[no-untyped-def]
    answers, seen, graph = fake_graph
    answers["/users/x@contoso.test"] = body(
        {
            "id": "u1",
            "userPrincipalName": "x@contoso.test",
            "userType": "Guest",
            "accountEnabled": False,
            "employeeHireDate": "2027-01-04T00:00:00.0000000Z",
            "mail": 7,
        }
    )
    user = await graph.find_user("x@contoso.test")
    assert user == DirectoryUser(
        "u1",
        "x@contoso.test",
        "x@contoso.test",
        user_type=UserType.GUEST,
        account_enabled=False,
        employee_hire_date=datetime(2027, 1, 4, tzinfo=UTC),
        mail=None,
    )
    assert "$select=" in str(seen[-1].url.raw_query_string).replace("%24", "$")
    answers["/users/y"] = body({"id": "u2"})
    bare = await graph.find_user("y")
    assert bare is not None and (bare.account_enabled, bare.user_type) == (True, UserType.MEMBER)


async def test_pass_and_policy_answers(fake_graph) -> None:  # type: ignore[no-untyped-def]
    answers, _seen, graph = fake_graph
    method = {
        "id": "m1",
        "createdDateTime": "2026-11-02T09:00:00.1234567Z",
        "startDateTime": "2026-11-02T09:01:00Z",
        "lifetimeInMinutes": 90,
        "isUsableOnce": True,
        "isUsable": True,
        "methodUsabilityReason": "SomethingNew",
        "temporaryAccessPass": None,
    }
    answers["/users/u1/authentication/temporaryAccessPassMethods"] = body({"value": [method]})
    current = await graph.current_pass("u1")
    assert current is not None
    assert (current.method_id, current.lifetime_minutes, current.one_time, current.usable) == ("m1", 90, True, True)
    assert current.start_at == datetime(2026, 11, 2, 9, 1, tzinfo=UTC)
    assert current.usability_reason.value == "Unknown"

    answers["/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass"] = body(
        {"@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration", "id": "Fido2", "state": "enabled"}
    )
    with pytest.raises(GraphRejected):
        await graph.tap_policy()


async def test_a_create_without_a_value_issues_nothing(fake_graph) -> None:  # type: ignore[no-untyped-def]
    answers, _seen, graph = fake_graph
    answers["/users/u1/authentication/temporaryAccessPassMethods"] = body({"id": "m1", "temporaryAccessPass": 5}, 201)
    with pytest.raises(GraphRejected, match="no pass value"):
        await graph.create_pass(DirectoryUser("u1", "u@x", "U"), lifetime_minutes=60, one_time=False, start_at=None)


async def test_errors_still_arrive_through_the_sdk(fake_graph) -> None:  # type: ignore[no-untyped-def]
    answers, seen, graph = fake_graph
    envelope = {"error": {"code": "TooManyRequests", "message": "slow down", "innerError": {"request-id": "r-1"}}}
    answers["/users/u1/checkMemberGroups"] = body(envelope, 429, **{"Retry-After": "0"})
    with pytest.raises(Throttled) as caught:
        await graph.member_groups("u1", ["g1"])
    assert (caught.value.retry_after_seconds, caught.value.request_id) == (0, "r-1")
    # A 429 is retried by the pacer only (Retry-After 0: at once, MAX_PACED_RETRIES times), never also by the SDK's
    # retry handler; then ODataError maps.
    assert len(seen) == 1 + MAX_PACED_RETRIES
    answers["/users/u2/checkMemberGroups"] = body(["not", "an", "object"])
    with pytest.raises(GraphRejected):
        await graph.member_groups("u2", ["g1"])


REFERENCES = [
    "MeganB@contoso.onmicrosoft.com",
    "jane_fabrikam.com#EXT#@contoso.onmicrosoft.com",
    "o'brien@contoso.test",
    "zoë+ü@contoso.test",
    "a/b?c=d&e%zz",
    "6832c635-8862-4324-872b-4990d834254a",
]


def sent_by_kiota(url: str) -> str:
    """kiota's expansion of a request's URL as its ParametersNameDecodingHandler sends it: `$select`, not the
    template's `%24select`."""
    from kiota_http.middleware import ParametersNameDecodingHandler
    from kiota_http.middleware.options import ParametersNameDecodingHandlerOption

    start, mark, query = url.partition("?")
    decoded = ParametersNameDecodingHandler().decode_uri_encoded_string(
        query, ParametersNameDecodingHandlerOption().characters_to_decode
    )
    return start + mark + decoded


@pytest.mark.parametrize("reference", REFERENCES)
def test_fast_url_expansion_matches_the_sdks(reference: str) -> None:
    from kiota_abstractions.request_information import RequestInformation
    from msgraph.generated.role_management.directory.role_assignments.role_assignments_request_builder import (
        RoleAssignmentsRequestBuilder,
    )
    from msgraph.generated.users.item.transitive_member_of.graph_group.graph_group_request_builder import (
        GraphGroupRequestBuilder,
    )
    from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder

    from bot.adapters.graph import USER_FIELDS
    from bot.adapters.graph_calls import _Call
    from bot.adapters.graph_json import _odata_literal
    from bot.adapters.graph_urls import expanded_url

    client, _http = build_graph_client(GraphSettings(GraphMode.ANONYMOUS), "https://graph.microsoft.us/v1.0")
    user = client.users.by_user_id(reference)
    literal = f"'{_odata_literal(reference)}'"
    requests: list[RequestInformation] = [
        user.to_get_request_information(
            _Call().configuration(UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=USER_FIELDS))
        ),
        user.authentication.temporary_access_pass_methods.to_get_request_information(_Call().configuration()),
        user.authentication.temporary_access_pass_methods.by_temporary_access_pass_authentication_method_id(
            reference
        ).to_delete_request_information(_Call().configuration()),
        user.transitive_member_of.graph_group.to_get_request_information(
            _Call().configuration(
                GraphGroupRequestBuilder.GraphGroupRequestBuilderGetQueryParameters(
                    filter="isAssignableToRole eq true", count=True, select=["id", "displayName"]
                ),
                {"ConsistencyLevel": "eventual"},
            )
        ),
        client.role_management.directory.role_assignments.to_get_request_information(
            _Call().configuration(
                RoleAssignmentsRequestBuilder.RoleAssignmentsRequestBuilderGetQueryParameters(
                    filter=f"principalId in ({literal}, 'x')", expand=["roleDefinition"]
                )
            )
        ),
        client.users.to_get_request_information(
            _Call().configuration(UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=1, select=["id"]))
        ),
        client.policies.authentication_methods_policy.authentication_method_configurations.by_authentication_method_configuration_id(
            "TemporaryAccessPass"
        ).to_get_request_information(_Call().configuration()),
    ]
    for request in requests:
        request.path_parameters["baseurl"] = "https://graph.microsoft.us/v1.0"
        fast = expanded_url(request)
        assert fast is not None, request.url_template
        assert fast == sent_by_kiota(request.url)  # kiota's own expansion, as its middleware sends it
        assert "%24" not in fast


@pytest.mark.parametrize(
    "answer",
    [{}, {"value": None}, {"value": [], "@odata.nextLink": "https://graph.microsoft.com/v1.0/next-page"}],
    ids=["no value", "value null", "more pages"],
)
async def test_an_incomplete_pass_or_methods_list_is_refused_not_read_as_none(fake_graph, answer) -> None:  # type: ignore[no-untyped-def]
    """Read as "no pass" it would let a bulk row replace a live pass unseen; read as "no methods", a recovery pass
    would pass for a first one and skip the verification of the person."""
    answers, _seen, graph = fake_graph
    answers["/users/u1/authentication/temporaryAccessPassMethods"] = body(answer)
    answers["/users/u1/authentication/methods"] = body(answer)
    with pytest.raises(GraphRejected, match="incomplete answer"):
        await graph.current_pass("u1")
    with pytest.raises(GraphRejected, match="incomplete answer"):
        await graph.methods_and_pass("u1", confirm_missing_pass=False)
    with pytest.raises(GraphRejected, match="incomplete answer"):
        await graph.sign_in_methods("u1")


async def test_an_empty_methods_list_is_no_methods_and_no_pass(fake_graph) -> None:  # type: ignore[no-untyped-def]
    answers, _seen, graph = fake_graph
    answers["/users/u1/authentication/temporaryAccessPassMethods"] = body({"value": []})
    answers["/users/u1/authentication/methods"] = body({"value": []})
    assert await graph.current_pass("u1") is None
    assert await graph.sign_in_methods("u1") == ()
    listed = await graph.methods_and_pass("u1", confirm_missing_pass=False)
    assert (listed.methods, listed.current_pass) == ((), None)
