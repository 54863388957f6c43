"""Which database errors mean "busy, try again" (StorageBusyError) rather than a bug."""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import IntegrityError, OperationalError

from llamaql.persistence.repositories.uow import is_contention


class PgError(Exception):
    """What SQLAlchemy's asyncpg adapter wraps: an error with a SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def test_sqlite_locked_and_busy_are_contention() -> None:
    for text in ("database is locked", "database table is locked"):
        assert is_contention(OperationalError("INSERT", {}, sqlite3.OperationalError(text)))


def test_postgres_serialization_deadlock_and_lock_timeout_are_contention() -> None:
    for state in ("40001", "40P01", "55P03"):
        assert is_contention(OperationalError("UPDATE", {}, PgError(state)))


def test_other_errors_are_not() -> None:
    assert not is_contention(IntegrityError("INSERT", {}, PgError("23505")))
    assert not is_contention(
        OperationalError("SELECT", {}, sqlite3.OperationalError("no such table"))
    )
    assert not is_contention(RuntimeError("database is locked"))
