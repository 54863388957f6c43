"""Migration 0003 (message branches) on a database filled under 0002: every existing
conversation becomes one branch, nothing else changes, and it downgrades cleanly."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.integration.persistence.old_schema import insert_conversation, insert_message

from llamaql.persistence.db import create_db_engine
from llamaql.persistence.migrations import alembic_config, migrate
from llamaql.persistence.models import MessageKind, MessageStatus


async def _fill(engine: AsyncEngine, user: uuid.UUID, texts: list[str]) -> list[uuid.UUID]:
    """A conversation with `texts` as alternating user/assistant messages (the last
    reply FAILED); the conversation's id, then the messages' ids by seq.

    Written newest first, so the migration cannot lean on insertion order.
    """
    conversation = await insert_conversation(engine, user)
    ids: list[uuid.UUID] = []
    for seq in range(len(texts), 0, -1):
        kind = MessageKind.USER if seq % 2 else MessageKind.BOT
        status = MessageStatus.FAILED if seq == len(texts) and kind == MessageKind.BOT else None
        ids.insert(
            0,
            await insert_message(
                engine,
                user_id=user,
                conversation_id=conversation,
                seq=seq,
                kind=kind,
                text=texts[seq - 1],
                status=status or MessageStatus.COMPLETE,
            ),
        )
    return [conversation, *ids]


async def _rows(engine: AsyncEngine, statement: str) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(sa.text(statement))).all())


def _hex(value: Any) -> str | None:
    return None if value is None else uuid.UUID(str(value)).hex


async def test_existing_conversations_become_single_branches(empty_db_url: str) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(empty_db_url), "0002")
    engine = create_db_engine(empty_db_url)
    try:
        alice, bob = uuid.uuid4(), uuid.uuid4()
        long_one = await _fill(engine, alice, ["hi", "hello", "more?", "sure", "bye", "oops"])
        short_one = await _fill(engine, bob, ["only one"])
        empty = await _fill(engine, alice, [])

        await migrate(empty_db_url)

        parents = {
            _hex(row[0]): _hex(row[1])
            for row in await _rows(engine, "SELECT id, parent_id FROM messages")
        }
        leaves = {
            _hex(row[0]): _hex(row[1])
            for row in await _rows(engine, "SELECT id, current_leaf_id FROM conversations")
        }
    finally:
        await engine.dispose()

    conversation, *messages = long_one
    assert [parents[m.hex] for m in messages] == [None, *(m.hex for m in messages[:-1])]
    assert leaves[conversation.hex] == messages[-1].hex  # the last one, FAILED or not
    assert parents[short_one[1].hex] is None
    assert leaves[short_one[0].hex] == short_one[1].hex
    assert leaves[empty[0].hex] is None


def _shape(connection: Connection) -> dict[str, Any]:
    inspector = inspect(connection)
    return {
        "message_columns": {c["name"] for c in inspector.get_columns("messages")},
        "conversation_columns": {c["name"] for c in inspector.get_columns("conversations")},
        "message_indexes": {ix["name"] for ix in inspector.get_indexes("messages")},
    }


async def _shape_of(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as connection:
        return await connection.run_sync(_shape)


async def test_downgrade_to_0002_drops_the_columns_and_keeps_every_message(
    empty_db_url: str,
) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(empty_db_url), "0002")
    engine = create_db_engine(empty_db_url)
    try:
        await _fill(engine, uuid.uuid4(), ["a", "b", "c"])
        await migrate(empty_db_url)
        upgraded = await _shape_of(engine)

        await asyncio.to_thread(command.downgrade, alembic_config(empty_db_url), "0002")
        downgraded = await _shape_of(engine)
        texts = sorted(row[0] for row in await _rows(engine, "SELECT text FROM messages"))
        await migrate(empty_db_url)  # and up again
        again = await _shape_of(engine)
    finally:
        await engine.dispose()

    assert "parent_id" in upgraded["message_columns"]
    assert "current_leaf_id" in upgraded["conversation_columns"]
    assert "ix_messages_parent_id" in upgraded["message_indexes"]
    assert "parent_id" not in downgraded["message_columns"]
    assert "current_leaf_id" not in downgraded["conversation_columns"]
    assert "ix_messages_parent_id" not in downgraded["message_indexes"]
    assert texts == ["a", "b", "c"]
    assert again == upgraded


async def test_sqlite_search_triggers_survive_the_upgrade(empty_db_url: str) -> None:
    """0003 adds columns in place: 0002's triggers on messages stay (SQLite only)."""
    if not empty_db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's search index is generated columns, not triggers")
    await asyncio.to_thread(command.upgrade, alembic_config(empty_db_url), "0002")
    engine = create_db_engine(empty_db_url)
    try:
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        before = {row[0] for row in await _rows(engine, query)}
        await migrate(empty_db_url)
        after = {row[0] for row in await _rows(engine, query)}
    finally:
        await engine.dispose()
    assert len(before) == 9
    assert after == before
