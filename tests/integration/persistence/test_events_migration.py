"""Migration 0006 (the live feed's outbox): up from 0005 adds `events`, down removes it,
and up again gives the same table."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from llamaql.persistence.db import create_db_engine
from llamaql.persistence.migrations import alembic_config, migrate


def _events_table(connection: Connection) -> tuple[set[str], set[str]] | None:
    inspector = inspect(connection)
    if "events" not in inspector.get_table_names():
        return None
    columns = {c["name"] for c in inspector.get_columns("events")}
    indexes = {str(i["name"]) for i in inspector.get_indexes("events")}
    return columns, indexes


async def _table(engine: AsyncEngine) -> tuple[set[str], set[str]] | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_events_table)


async def test_0006_adds_the_events_table_and_downgrades_cleanly(empty_db_url: str) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(empty_db_url), "0005")
    engine = create_db_engine(empty_db_url)
    try:
        before = await _table(engine)
        await migrate(empty_db_url)
        upgraded = await _table(engine)
        await asyncio.to_thread(command.downgrade, alembic_config(empty_db_url), "0005")
        downgraded = await _table(engine)
        await migrate(empty_db_url)
        again = await _table(engine)
    finally:
        await engine.dispose()
    assert before is None
    assert upgraded is not None
    columns, indexes = upgraded
    assert columns == {
        "key",
        "user_id",
        "conversation_id",
        "kind",
        "message_id",
        "status",
        "created_at",
    }
    assert {"ix_events_user_key", "ix_events_created_at"} <= indexes
    assert downgraded is None
    assert again == upgraded
