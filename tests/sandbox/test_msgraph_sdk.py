"""The real msgraph-sdk, pointed at the sandbox, parses its answers."""

from __future__ import annotations

import pytest
from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.temporary_access_pass_authentication_method import (
    TemporaryAccessPassAuthenticationMethod,
)
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient

from bot.sandbox import RunningSandbox
from tests.sandbox.support import JANE_GUEST, LEE, LEE_ID, PRADEEP_EXCLUDED

# msgraph-sdk warns about its own generated classes while building requests; not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
]


@pytest.fixture
def client(sandbox: RunningSandbox) -> GraphServiceClient:
    adapter = GraphRequestAdapter(AnonymousAuthenticationProvider())
    adapter.base_url = sandbox.base_url
    return GraphServiceClient(request_adapter=adapter)


async def test_sdk_creates_and_lists_a_pass(client: GraphServiceClient) -> None:
    passes = client.users.by_user_id(LEE).authentication.temporary_access_pass_methods
    created = await passes.post(TemporaryAccessPassAuthenticationMethod(lifetime_in_minutes=60))
    listed = await passes.get()

    assert created is not None and listed is not None and listed.value is not None
    assert created.temporary_access_pass is not None and len(created.temporary_access_pass) == 8
    assert created.lifetime_in_minutes == 60
    assert created.method_usability_reason == "EnabledByPolicy"
    assert created.created_date_time is not None and created.created_date_time.tzinfo is not None
    [only] = listed.value
    assert only.id == created.id
    assert only.temporary_access_pass is None


async def test_sdk_reads_selected_user_properties(client: GraphServiceClient) -> None:
    # Imported here: importing it warns (inside msgraph), and only the marked test run filters that.
    from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

    query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
        select=["id", "accountEnabled", "employeeHireDate", "userType"]
    )
    user = await client.users.by_user_id(LEE).get(RequestConfiguration(query_parameters=query))

    assert user is not None
    assert (user.id, user.account_enabled, user.user_type) == (LEE_ID, True, "Member")
    assert user.employee_hire_date is not None and user.employee_hire_date.year == 2027


async def test_sdk_surfaces_graph_errors(client: GraphServiceClient) -> None:
    with pytest.raises(ODataError) as guest:
        await client.users.by_user_id(JANE_GUEST).authentication.temporary_access_pass_methods.post(
            TemporaryAccessPassAuthenticationMethod()
        )
    with pytest.raises(ODataError) as excluded:
        await client.users.by_user_id(PRADEEP_EXCLUDED).authentication.temporary_access_pass_methods.post(
            TemporaryAccessPassAuthenticationMethod()
        )

    assert guest.value.response_status_code == 400
    assert guest.value.error is not None and guest.value.error.inner_error is not None
    assert guest.value.error.message == "Temporary Access Pass cannot be added to an external guest user"
    assert guest.value.error.inner_error.request_id
    assert excluded.value.response_status_code == 403
    assert excluded.value.error is not None and excluded.value.error.code == "badRequest"
