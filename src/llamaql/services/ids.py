"""Parsing client-supplied ids and opaque cursors (malformed -> BAD_USER_INPUT)."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

from llamaql.ports.errors import BadInputError

# A message seq is a 64-bit integer; longer digit strings are forged.
MAX_SEQ_DIGITS = 18


def parse_id(value: str | uuid.UUID, *, field: str = "id") -> uuid.UUID:
    """A UUID from a GraphQL ID argument; a malformed one names the argument."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise BadInputError(f"{field} must be a UUID, got {value!r:.60}") from None


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def bad_cursor(cursor: str) -> BadInputError:
    """The refusal of a cursor this server did not make (shown cut short)."""
    return BadInputError(f"after is not a valid cursor: {cursor!r:.60}")


def _decode(cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise bad_cursor(cursor) from None
    # Every cursor this server makes is ASCII; "²" and the like pass str.isdigit().
    if not text.isascii():
        raise bad_cursor(cursor)
    return text


def encode_conversation_cursor(updated_at: datetime, conversation_id: uuid.UUID) -> str:
    return _encode(f"c:{updated_at.isoformat()}|{conversation_id}")


def decode_conversation_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (updated_at, id) key a conversation cursor encodes."""
    text = _decode(cursor)
    kind, _, rest = text.partition(":")
    stamp, _, raw_id = rest.partition("|")
    try:
        if kind != "c":
            raise ValueError(kind)
        updated_at = datetime.fromisoformat(stamp)
        if updated_at.tzinfo is None:
            raise ValueError(stamp)
        return updated_at, uuid.UUID(raw_id)
    except ValueError:
        raise bad_cursor(cursor) from None


def encode_message_cursor(seq: int) -> str:
    return _encode(f"m:{seq}")


def decode_message_cursor(cursor: str) -> int:
    """The seq a message cursor encodes."""
    kind, _, raw = _decode(cursor).partition(":")
    if kind != "m" or not raw.isdigit() or len(raw) > MAX_SEQ_DIGITS:
        raise bad_cursor(cursor)
    return int(raw)


def encode_search_cursor(position: int) -> str:
    return _encode(f"s:{position}")


def decode_search_cursor(cursor: str) -> int:
    """The 0-based position in the ranking that a search cursor encodes."""
    kind, _, raw = _decode(cursor).partition(":")
    if kind != "s" or not raw.isdigit() or len(raw) > 9:
        raise BadInputError(f"after is not a valid cursor: {cursor!r}")
    return int(raw)
