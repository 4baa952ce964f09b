"""The in-memory world most domain tests start from (tests/domain/world.py), with an approvals channel set up."""

from __future__ import annotations

import pytest

from tests.domain.world import World


@pytest.fixture
async def world() -> World:
    built = World()
    await built.open_channel()
    return built
