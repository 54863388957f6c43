"""OneTripCursor: each statement is one trip to aiosqlite's thread, with the results,
counts, errors and transactions SQLAlchemy's own aiosqlite adapter gives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from unittest.mock import patch

import aiosqlite
import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from llamaql.persistence.db import create_db_engine
from llamaql.persistence.db_sqlite import OneTripCursor


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'one.db'}"
    ours = create_db_engine(url)
    stock = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'stock.db'}")
    for engine in (ours, stock):
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
    yield ours, stock
    for engine in (ours, stock):
        await engine.dispose()


async def _script(engine: AsyncEngine) -> list[object]:
    seen: list[object] = []
    async with engine.begin() as connection:
        inserted = await connection.execute(text("INSERT INTO t (v) VALUES ('a')"))
        seen.append(inserted.lastrowid)
        many = await connection.execute(
            text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}]
        )
        seen.append(many.rowcount)
        updated = await connection.execute(text("UPDATE t SET v = v || '!' WHERE id > 1"))
        seen.append(updated.rowcount)
        rows = await connection.execute(text("SELECT id, v FROM t ORDER BY id"))
        seen.append(list(rows.keys()))
        seen.append([tuple(row) for row in rows])
        seen.append((await connection.execute(text("SELECT count(*) FROM t"))).scalar_one())
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO t (v) VALUES ('z')"))
        with pytest.raises(exc.IntegrityError):
            await connection.execute(text("INSERT INTO t (v) VALUES ('a')"))
        await connection.rollback()
    async with engine.connect() as connection:  # the failed transaction left nothing
        seen.append((await connection.execute(text("SELECT count(*) FROM t"))).scalar_one())
    return seen


async def test_results_counts_and_errors_match_the_stock_adapter(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    ours, stock = engines
    assert await _script(ours) == await _script(stock)


async def test_a_statement_is_one_trip_to_the_thread(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    ours, stock = engines
    counts = []
    for engine in (ours, stock):
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))  # the connection is made
            with patch.object(
                aiosqlite.Connection,
                "_execute",
                autospec=True,
                side_effect=aiosqlite.Connection._execute,
            ) as trips:
                result = await connection.execute(text("SELECT id, v FROM t"))
                assert result.all() == []
            counts.append(trips.call_count)
    assert counts == [1, 4]


async def test_the_engine_uses_it(engines: tuple[AsyncEngine, AsyncEngine]) -> None:
    ours, _ = engines
    async with ours.connect() as connection:
        raw = await connection.get_raw_connection()
        assert isinstance(raw.driver_connection, aiosqlite.Connection)
        assert isinstance(raw.dbapi_connection.cursor(), OneTripCursor)  # type: ignore[union-attr]


async def test_ending_a_read_makes_no_trip_and_a_write_is_still_rolled_back(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    ours, _ = engines
    with patch.object(
        aiosqlite.Connection, "rollback", autospec=True, side_effect=aiosqlite.Connection.rollback
    ) as rollbacks:
        async with ours.connect() as connection:
            assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
        assert rollbacks.call_count == 0  # SQLite held no transaction: nothing to undo
        async with ours.connect() as connection:
            await connection.execute(text("INSERT INTO t (v) VALUES ('kept?')"))
        assert rollbacks.call_count == 1  # ended without a commit: undone
    async with ours.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
        raw = await connection.get_raw_connection()
        assert isinstance(raw.driver_connection, aiosqlite.Connection)
        assert not raw.driver_connection.in_transaction
