"""Migration 0005 (a model per conversation and per reply) on a database filled under
0004: existing rows keep everything and get NULL (the default model), the search
triggers stay, and it downgrades cleanly."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import sqlalchemy as sa
from alembic import command
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.integration.persistence.old_schema import insert_conversation, insert_message

from llamaql.persistence.db import create_db_engine
from llamaql.persistence.migrations import alembic_config, migrate
from llamaql.persistence.models import MessageKind, MessageStatus


async def _rows(engine: AsyncEngine, statement: str) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(sa.text(statement))).all())


def _columns(connection: Connection) -> dict[str, set[str]]:
    inspector = inspect(connection)
    return {
        table: {c["name"] for c in inspector.get_columns(table)}
        for table in ("messages", "conversations")
    }


async def _columns_of(engine: AsyncEngine) -> dict[str, set[str]]:
    async with engine.connect() as connection:
        return await connection.run_sync(_columns)


async def test_existing_rows_answer_with_the_default_model_and_downgrade_keeps_them(
    empty_db_url: str,
) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(empty_db_url), "0004")
    engine = create_db_engine(empty_db_url)
    try:
        user = uuid.uuid4()
        conversation = await insert_conversation(engine, user)
        await insert_message(
            engine,
            user_id=user,
            conversation_id=conversation,
            seq=1,
            kind=MessageKind.USER,
            text="hello",
            status=MessageStatus.COMPLETE,
        )
        await migrate(empty_db_url)
        upgraded = await _columns_of(engine)
        models = await _rows(engine, "SELECT model FROM conversations")
        replies = await _rows(engine, "SELECT model, text FROM messages")
        await asyncio.to_thread(command.downgrade, alembic_config(empty_db_url), "0004")
        downgraded = await _columns_of(engine)
        texts = await _rows(engine, "SELECT text FROM messages")
        await migrate(empty_db_url)
        again = await _columns_of(engine)
    finally:
        await engine.dispose()
    assert "model" in upgraded["conversations"]
    assert "model" in upgraded["messages"]
    assert models == [(None,)]
    assert replies == [(None, "hello")]
    assert "model" not in downgraded["conversations"] | downgraded["messages"]
    assert texts == [("hello",)]
    assert again == upgraded


async def test_sqlite_search_triggers_survive_the_upgrade(empty_db_url: str) -> None:
    if not empty_db_url.startswith("sqlite"):
        return  # PostgreSQL's search index is generated columns, not triggers
    await asyncio.to_thread(command.upgrade, alembic_config(empty_db_url), "0004")
    engine = create_db_engine(empty_db_url)
    try:
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        before = {row[0] for row in await _rows(engine, query)}
        await migrate(empty_db_url)
        after = {row[0] for row in await _rows(engine, query)}
    finally:
        await engine.dispose()
    assert before
    assert after == before
