"""Replicas on one PostgreSQL: every test gets its own database, created empty (servers
migrate it on start) and dropped afterwards, so parallel runs never share rows or
NOTIFY channels. Skipped without LLAMAQL_TEST_POSTGRES_URL."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from tests.integration.postgres import POSTGRES_ENV, scratch_database

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """The URL of a new, empty PostgreSQL database of this test alone."""
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"set {POSTGRES_ENV} to run the replica tests")
    async with scratch_database("llamaql_replicas") as url:
        yield url
