"""Private PostgreSQL databases for tests, made on the server LLAMAQL_TEST_POSTGRES_URL
names: each uniquely named (so parallel runs and leftovers never collide), created empty
or copied from a template, and dropped with FORCE afterwards (a server that died may
still hold connections). The repository, replica and deployment tests all use these."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

POSTGRES_ENV = "LLAMAQL_TEST_POSTGRES_URL"


async def admin(*statements: str) -> None:
    """Statements outside a transaction on the test server (CREATE/DROP DATABASE, ALTER
    DATABASE, pg_terminate_backend), as the server's own maintenance connection."""
    engine = create_async_engine(
        os.environ[POSTGRES_ENV], isolation_level="AUTOCOMMIT", poolclass=pool.NullPool
    )
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


def database_url(name: str) -> str:
    """The test server's URL with this database."""
    url = make_url(os.environ[POSTGRES_ENV]).set(database=name)
    return url.render_as_string(hide_password=False)


async def create_database(prefix: str, template: str | None = None) -> str:
    """A new database named `<prefix>_<random>`, empty or a copy of `template`; its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    from_template = f' TEMPLATE "{template}"' if template else ""
    await admin(f'CREATE DATABASE "{name}"{from_template}')
    return name


async def drop_database(name: str) -> None:
    await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def scratch_database(prefix: str, template: str | None = None) -> AsyncIterator[str]:
    """A database of the caller's alone for the block (see create_database); its URL."""
    name = await create_database(prefix, template)
    try:
        yield database_url(name)
    finally:
        await drop_database(name)
