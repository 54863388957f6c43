"""Replicas on one PostgreSQL: every test gets its own database, created empty (servers
migrate it on start) and dropped afterwards, so parallel runs never share rows or
NOTIFY channels. Skipped without LLAMAQL_TEST_POSTGRES_URL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

POSTGRES_ENV = "LLAMAQL_TEST_POSTGRES_URL"

pytestmark = pytest.mark.postgres


async def _admin(*statements: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction.
    engine = create_async_engine(
        os.environ[POSTGRES_ENV], isolation_level="AUTOCOMMIT", poolclass=pool.NullPool
    )
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """The URL of a new, empty PostgreSQL database of this test alone."""
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"set {POSTGRES_ENV} to run the replica tests")
    name = f"llamaql_replicas_{uuid.uuid4().hex[:16]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(os.environ[POSTGRES_ENV]).set(database=name).render_as_string(False)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
