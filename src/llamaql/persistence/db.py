"""Database engines and session factories (SQLite via aiosqlite, PostgreSQL via asyncpg).

Nothing is built at import time: the composition root calls these once and disposes
of the engine on shut-down.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from llamaql.persistence.db_sqlite import one_trip_dbapi

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 5000
DEFAULT_TIMEOUT_S = 10.0  # LLAMAQL_DB_TIMEOUT_SECONDS

SessionFactory = async_sessionmaker[AsyncSession]
"""What repositories' units of work open sessions from."""


def is_sqlite(url: str | URL) -> bool:
    """True for a SQLite URL, whatever its driver."""
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str | URL) -> Path | None:
    """The database file of a SQLite URL; None for in-memory databases and other backends."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def ensure_sqlite_directory(url: str | URL) -> None:
    """Create the folder a SQLite file lives in; SQLite refuses to create it itself."""
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def _set_sqlite_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:
    # Per-connection settings: foreign keys and the busy timeout do not persist in the
    # file, so every pooled connection needs them. WAL lets readers run beside a writer.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def create_db_engine(
    url: str, *, echo: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S
) -> AsyncEngine:
    """An async engine for `sqlite+aiosqlite://` or `postgresql+asyncpg://` URLs.

    Statement parameters are user text: they never reach a log line or an error message
    (`hide_parameters`), whatever the log level. On PostgreSQL, connecting, each
    statement and the wait for a pooled connection give up after `timeout_s`
    (LLAMAQL_DB_TIMEOUT_SECONDS): asyncpg's own defaults, 60 s to connect and no limit
    on a statement, held every request of a partitioned server for a minute."""
    parsed = make_url(url)
    if parsed.drivername == "sqlite+aiosqlite":
        ensure_sqlite_directory(parsed)
        engine = create_async_engine(
            parsed,
            echo=echo,
            hide_parameters=True,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            module=one_trip_dbapi(),
        )
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
    elif parsed.drivername == "postgresql+asyncpg":
        engine = create_async_engine(
            parsed,
            echo=echo,
            hide_parameters=True,
            pool_pre_ping=True,
            pool_timeout=timeout_s,
            connect_args={"timeout": timeout_s, "command_timeout": timeout_s},
        )
    else:
        raise ValueError(
            f"unsupported database URL driver {parsed.drivername!r}: "
            "use sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    logger.info("database engine created for %s", parsed.render_as_string(hide_password=True))
    return engine


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions that keep loaded values after commit (results outlive their session)."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
