"""Timezone-aware timestamps that survive a round trip through SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def utc_now() -> datetime:
    """Timezone-aware now; SQLModel's datetime columns reject naive values."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A `DateTime(timezone=True)` that always stores and returns aware UTC values.

    SQLite has no timezone type and hands back naive datetimes; storing every value
    in UTC keeps its text ordering right (keyset pagination relies on it), and
    reattaching UTC on the way out gives callers the same aware values PostgreSQL does.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use an aware value, e.g. utc_now()")
        value = value.astimezone(UTC)
        # SQLite's DATETIME text has no offset: what it keeps must be the UTC wall time.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
