"""The Alembic migrations: from an empty database to head, idempotent, and in step
with the SQLModel tables."""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from llamaql.persistence.db import create_db_engine
from llamaql.persistence.migrations import current_revision, head_revision, migrate
from llamaql.persistence.migrations.__main__ import main as migrations_main
from llamaql.persistence.migrations.unmodelled import include_name
from llamaql.ports.repositories import UnitOfWorkFactory
from llamaql.ports.values import SamplingOptions


def _schema(connection: Connection) -> dict[str, Any]:
    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    indexes = {
        table: {
            (ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
            for ix in inspector.get_indexes(table)
        }
        for table in tables
    }
    foreign_keys = inspector.get_foreign_keys("messages") if "messages" in tables else []
    return {"tables": tables, "indexes": indexes, "foreign_keys": foreign_keys}


async def _inspect(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as connection:
        return await connection.run_sync(_schema)


def _diff(connection: Connection) -> list[Any]:
    # The same filter as env.py: the search index is the migrations' alone.
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": include_name}
    )
    return list(compare_metadata(context, SQLModel.metadata))


async def test_migrate_creates_tables_and_indexes_from_empty(empty_db_url: str) -> None:
    assert await current_revision(empty_db_url) is None

    await migrate(empty_db_url)

    assert await current_revision(empty_db_url) == head_revision()
    engine = create_db_engine(empty_db_url)
    try:
        schema = await _inspect(engine)
    finally:
        await engine.dispose()
    assert {"conversations", "messages", "alembic_version"} <= schema["tables"]
    assert schema["indexes"]["conversations"] >= {
        ("ix_conversations_user_id", ("user_id",), False),
        ("ix_conversations_user_updated", ("user_id", "updated_at", "id"), False),
    }
    assert schema["indexes"]["messages"] >= {
        ("ix_messages_user_id", ("user_id",), False),
        ("ix_messages_conversation_seq", ("conversation_id", "seq"), True),
    }
    [foreign_key] = schema["foreign_keys"]
    assert foreign_key["referred_table"] == "conversations"
    assert foreign_key["constrained_columns"] == ["conversation_id"]
    assert foreign_key["options"].get("ondelete") == "CASCADE"


async def test_migrate_twice_is_a_no_op(db_url: str, uow: UnitOfWorkFactory) -> None:
    # db_url is already at head; a conversation written now must survive a re-run.
    user_id = uuid.uuid4()
    async with uow() as unit:
        created = await unit.conversations.create(
            user_id=user_id, title="kept", system_prompt=None, options=SamplingOptions()
        )
        await unit.commit()

    await migrate(db_url)

    assert await current_revision(db_url) == head_revision()
    async with uow() as unit:
        kept = await unit.conversations.get(user_id=user_id, conversation_id=created.id)
    assert kept is not None
    assert kept.title == "kept"


async def test_head_matches_the_models(engine: AsyncEngine) -> None:
    """A model change without a migration fails here."""
    async with engine.connect() as connection:
        assert await connection.run_sync(_diff) == []


def _unfiltered_diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_only_the_search_index_is_left_out_of_the_comparison(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        diff = await connection.run_sync(_unfiltered_diff)
    names = set()
    for entry in diff:
        change = entry[0] if isinstance(entry, list) else entry
        kind, obj = change[0], change[-1] if change[0] == "remove_column" else change[1]
        names.add((kind, getattr(obj, "name", None)))
    if engine.dialect.name == "sqlite":
        assert {name for kind, name in names if kind == "remove_table"} == {
            "search_entries",
            "search_fts",
            "search_fts_data",
            "search_fts_idx",
            "search_fts_docsize",
            "search_fts_config",
        }
        assert {(kind, name) for kind, name in names if kind != "remove_table"} == {
            ("remove_index", "ix_search_entries_message_id"),
            ("remove_index", "ix_search_entries_conversation_id"),
        }
    else:
        assert names == {
            ("remove_column", "search_vector"),
            ("remove_index", "ix_messages_search_vector"),
            ("remove_index", "ix_conversations_search_vector"),
        }


async def test_model_comparison_notices_a_missing_index(engine: AsyncEngine) -> None:
    # Proves the check above can fail: drop an index the models declare.
    async with engine.begin() as connection:
        await connection.execute(text("DROP INDEX ix_messages_status"))
        diff = await connection.run_sync(_diff)
    assert [entry[0] for entry in diff] == ["add_index"]
    assert diff[0][1].name == "ix_messages_status"


def test_developer_command_reports_head(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m llamaql.persistence.migrations current` (the package's stand-in for
    alembic.ini)."""
    monkeypatch.setenv("LLAMAQL_DATABASE_URL", db_url)
    with ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(migrations_main, ["current"]).result()
    assert f"{head_revision()} (head)" in capsys.readouterr().out


async def test_migrating_leaves_the_apps_logging_alone(empty_db_url: str) -> None:
    # alembic's stock env.py calls fileConfig, which disables every existing logger.
    probe = logging.getLogger("llamaql.logging_probe")
    root = logging.getLogger()
    before = (list(root.handlers), root.level)

    await migrate(empty_db_url)

    assert not probe.disabled
    assert (list(root.handlers), root.level) == before
