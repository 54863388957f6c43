"""create_db_engine: SQLite connection settings, folders, drivers; UTC timestamps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import StatementError
from sqlmodel import col

from llamaql.persistence.db import SessionFactory, create_db_engine
from llamaql.persistence.models import Conversation
from llamaql.ports.repositories import UnitOfWorkFactory
from llamaql.ports.values import SamplingOptions


async def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    try:
        async with engine.connect() as connection:
            journal = await connection.scalar(text("PRAGMA journal_mode"))
            foreign_keys = await connection.scalar(text("PRAGMA foreign_keys"))
            busy_timeout = await connection.scalar(text("PRAGMA busy_timeout"))
    finally:
        await engine.dispose()
    assert (journal, foreign_keys, busy_timeout) == ("wal", 1, 5000)


async def test_sqlite_folder_is_created(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there.db"
    engine = create_db_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as connection:
            await connection.execute(text("CREATE TABLE t (x INTEGER)"))
    finally:
        await engine.dispose()
    assert path.is_file()


@pytest.mark.parametrize(
    "url", ["sqlite:///x.db", "postgresql://localhost/db", "mysql+aiomysql://h/d"]
)
def test_sync_or_unknown_drivers_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite\\+aiosqlite:// or postgresql\\+asyncpg://"):
        create_db_engine(url)


async def test_timestamps_come_back_as_the_same_utc_instant(
    uow: UnitOfWorkFactory, session_factory: SessionFactory, alice: uuid.UUID
) -> None:
    async with uow() as unit:
        created = await unit.conversations.create(
            user_id=alice, title=None, system_prompt=None, options=SamplingOptions()
        )
        await unit.commit()
    paris_noon = datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    async with session_factory() as session:
        await session.exec(
            update(Conversation)
            .where(col(Conversation.id) == created.id)
            .values(updated_at=paris_noon)
        )
        await session.commit()

    async with uow() as unit:
        loaded = await unit.conversations.get(user_id=alice, conversation_id=created.id)
    assert loaded is not None
    assert loaded.updated_at == paris_noon
    assert loaded.updated_at.tzinfo == UTC
    assert loaded.updated_at.hour == 10


async def test_naive_timestamps_are_refused(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    async with uow() as unit:
        created = await unit.conversations.create(
            user_id=alice, title=None, system_prompt=None, options=SamplingOptions()
        )
        # The values are frozen: a naive time reaches the database only as a cursor.
        with pytest.raises(StatementError, match="naive datetime"):
            await unit.conversations.list_page(
                user_id=alice, limit=1, after=(datetime(2026, 1, 1), created.id)
            )
