"""A PostgreSQL that cannot be reached, met by the real engine and unit of work:
refused connections, a server that accepts and relays nothing (through a TCP proxy),
and a database closed to connections with its sessions terminated. Each leaves the unit
of work as DatabaseUnavailableError within LLAMAQL_DB_TIMEOUT_SECONDS, and the next
unit after the outage works; `/health`'s probe says the same."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from bench.reliability.tcp_proxy import TcpProxy
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.integration.postgres import admin, scratch_database

from llamaql.persistence.db import create_db_engine, create_session_factory
from llamaql.persistence.db_health import DatabaseProbe
from llamaql.persistence.repositories import make_uow_factory
from llamaql.ports.errors import DatabaseUnavailableError
from llamaql.ports.repositories import UnitOfWorkFactory

TIMEOUT_S = 0.5
# Far above TIMEOUT_S: without the timeouts, asyncpg waits 60 s to connect and forever
# for a statement.
BOUND_S = 20.0

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_url(postgres_template: str) -> AsyncIterator[str]:
    """A private PostgreSQL database migrated to head (outages are simulated there)."""
    async with scratch_database("llamaql_outage", postgres_template) as url:
        yield url


@pytest.fixture
async def proxy(pg_url: str) -> AsyncIterator[TcpProxy]:
    url = make_url(pg_url)
    async with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as made:
        yield made


@pytest.fixture
async def proxied(pg_url: str, proxy: TcpProxy) -> AsyncIterator[AsyncEngine]:
    url = make_url(pg_url).set(host="127.0.0.1", port=proxy.port)
    engine = create_db_engine(url.render_as_string(hide_password=False), timeout_s=TIMEOUT_S)
    yield engine
    await engine.dispose()


def _uow(engine: AsyncEngine) -> UnitOfWorkFactory:
    return make_uow_factory(create_session_factory(engine), timeout_s=TIMEOUT_S)


async def _count(uow: UnitOfWorkFactory) -> int:
    async with asyncio.timeout(BOUND_S), uow() as unit:
        return await unit.conversations.count(user_id=uuid.uuid4())


async def _unavailable(uow: UnitOfWorkFactory) -> None:
    with pytest.raises(DatabaseUnavailableError) as raised:
        await _count(uow)
    assert raised.value.code == "SERVICE_UNAVAILABLE"
    assert raised.value.retryable


async def test_refused_connections_are_unavailable_then_served_again(
    proxied: AsyncEngine, proxy: TcpProxy
) -> None:
    uow = _uow(proxied)
    assert await _count(uow) == 0  # a pooled connection, then cut by the outage
    await proxy.refuse()
    await _unavailable(uow)  # the pooled connection, reset
    await _unavailable(uow)  # a new connection, refused
    await proxy.relay()
    assert await _count(uow) == 0


@pytest.mark.parametrize("pooled", [True, False], ids=["pooled", "new-connection"])
async def test_a_blackhole_is_unavailable_within_the_timeout(
    proxied: AsyncEngine, proxy: TcpProxy, pooled: bool
) -> None:
    uow = _uow(proxied)
    if pooled:
        assert await _count(uow) == 0
    proxy.blackhole()
    await _unavailable(uow)
    await proxy.relay()
    assert await _count(uow) == 0


async def test_a_database_closed_to_connections_is_unavailable(pg_url: str) -> None:
    name = make_url(pg_url).database
    engine = create_db_engine(pg_url, timeout_s=TIMEOUT_S)
    uow = _uow(engine)
    try:
        assert await _count(uow) == 0
        await admin(
            f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
        )
        try:
            await _unavailable(uow)  # its pooled connection was terminated
            await _unavailable(uow)  # a new one is refused
        finally:
            await admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert await _count(uow) == 0
    finally:
        await engine.dispose()


async def test_the_health_probe_reports_an_outage_and_the_recovery(
    proxied: AsyncEngine, proxy: TcpProxy
) -> None:
    probe = DatabaseProbe(proxied, timeout_s=TIMEOUT_S, fresh_s=0.0)
    assert await probe.problem() is None
    await proxy.refuse()
    refused = await asyncio.wait_for(probe.problem(), BOUND_S)
    assert refused is not None
    assert "unreachable" in refused
    await proxy.relay()
    proxy.blackhole()
    silent = await asyncio.wait_for(probe.problem(), BOUND_S)
    assert silent is not None
    await proxy.relay()
    assert await asyncio.wait_for(probe.problem(), BOUND_S) is None
