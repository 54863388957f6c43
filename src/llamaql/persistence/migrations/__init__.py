"""Alembic migrations, run programmatically (the package needs no alembic.ini).

`llamaql migrate` and `llamaql serve` call `migrate(url)`; tests and tools can use the
lower-level helpers. Developers add a revision with
`python -m llamaql.persistence.migrations revision --autogenerate -m "what changed"`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(url: str) -> Config:
    """An Alembic Config for this package's scripts and the given database URL."""
    # stdout looked up now: Config's default is bound once, at alembic's import.
    config = Config(stdout=sys.stdout)
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not an ini option: ini values undergo %-interpolation,
    # which would mangle passwords containing '%'.
    config.attributes["database_url"] = url
    return config


def head_revision() -> str:
    """The newest revision this package ships."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration revisions found in {MIGRATIONS_DIR}")
    return head


def upgrade_to_head(url: str) -> None:
    """Bring the database at `url` to the newest revision (blocking: it runs its own
    event loop, so async callers use `migrate`)."""
    logger.info(
        "upgrading database %s to %s",
        make_url(url).render_as_string(hide_password=True),
        head_revision(),
    )
    command.upgrade(alembic_config(url), "head")


async def migrate(url: str) -> None:
    """`upgrade_to_head` off the event loop."""
    await asyncio.to_thread(upgrade_to_head, url)


def _revision_of(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(url: str) -> str | None:
    """The revision the database at `url` is at; None when it was never migrated."""
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_revision_of)
    finally:
        await engine.dispose()


__all__ = ["alembic_config", "current_revision", "head_revision", "migrate", "upgrade_to_head"]
