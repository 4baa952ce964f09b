from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import ClientSession

from bot.sandbox import (
    DEMO_TENANT_PATH,
    RunningSandbox,
    SandboxClock,
    SandboxOptions,
    Tenant,
    load_tenant,
    start_sandbox,
)
from tests.sandbox.support import FROZEN_NOW

StartSandbox = Callable[..., Awaitable[RunningSandbox]]


@pytest.fixture(scope="session")
def demo_tenant() -> Tenant:
    return load_tenant(DEMO_TENANT_PATH)


@pytest.fixture
def clock() -> SandboxClock:
    return SandboxClock(frozen_at=FROZEN_NOW)


@pytest.fixture
async def start(demo_tenant: Tenant, clock: SandboxClock) -> AsyncIterator[StartSandbox]:
    """Starts sandboxes on free ports (demo tenant and frozen clock unless told otherwise); closes them after."""
    running: list[RunningSandbox] = []

    async def start_one(tenant: Tenant | None = None, options: SandboxOptions | None = None) -> RunningSandbox:
        sandbox = await start_sandbox(tenant or demo_tenant, options or SandboxOptions(clock=clock))
        running.append(sandbox)
        return sandbox

    yield start_one
    for sandbox in running:
        await sandbox.close()


@pytest.fixture
async def sandbox(start: StartSandbox) -> RunningSandbox:
    return await start()


@pytest.fixture
async def http(sandbox: RunningSandbox) -> AsyncIterator[ClientSession]:
    async with ClientSession(base_url=sandbox.root_url) as session:
        yield session
