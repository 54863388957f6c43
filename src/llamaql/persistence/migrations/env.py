"""Alembic environment: async engine, SQLModel metadata, batch mode on SQLite.

Run through llamaql.persistence.migrations (never `fileConfig`: the application owns logging).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

from llamaql.persistence.db import ensure_sqlite_directory
from llamaql.persistence.migrations.unmodelled import include_name
from llamaql.persistence.models import UTCDateTime  # also registers the tables on SQLModel.metadata

# Any constant works; it only has to be the same for every replica of this app.
PG_MIGRATION_LOCK_ID = 0x6C6C716C

config = context.config
target_metadata = SQLModel.metadata


def _database_url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: run migrations through llamaql.persistence.migrations")
    return str(url)


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Migrations must not import application types: render the plain column type.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_item=_render_item,
        include_name=include_name,
        compare_type=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    url = _database_url()
    _configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A batch migration copies and drops tables; with foreign keys on, SQLite
        # would cascade-delete child rows on the drop. The pragma only applies
        # outside a transaction, so commit the implicit one before migrating.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    _configure(connection=connection, render_as_batch=sqlite)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Replicas starting together upgrade one after another, not at once.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": PG_MIGRATION_LOCK_ID}
            )
        context.run_migrations()


async def run_migrations_online() -> None:
    url = _database_url()
    ensure_sqlite_directory(url)
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
