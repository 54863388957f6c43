"""Event cursors: opaque to clients, `e:<key>|<unix ms>` in URL-safe base64.

The key says where a feed resumes; the time (the event's, or when the cursor was made)
says whether the events after it may have been purged (older than the retention).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime

from llamaql.ports.errors import BadInputError

MAX_KEY_DIGITS = 18  # a 64-bit key; longer digit strings are forged


@dataclass(frozen=True, slots=True)
class EventCursor:
    key: int
    at: datetime

    def encode(self) -> str:
        millis = int(self.at.timestamp() * 1000)
        return base64.urlsafe_b64encode(f"e:{self.key}|{millis}".encode()).decode()


def decode_event_cursor(cursor: str) -> EventCursor:
    """BadInputError for anything this server did not make."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode("ascii")
        kind, _, rest = text.partition(":")
        key, _, millis = rest.partition("|")
        if kind != "e" or not _digits(key, MAX_KEY_DIGITS) or not _digits(millis, 15):
            raise ValueError(text)
        return EventCursor(int(key), datetime.fromtimestamp(int(millis) / 1000, UTC))
    except (binascii.Error, UnicodeError, ValueError, OverflowError, OSError):
        raise BadInputError(f"since is not a valid events cursor: {cursor!r:.60}") from None


def _digits(text: str, most: int) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= most
