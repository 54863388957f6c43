"""SQLModel table models (and nothing else)."""

# _naming must run before any table is defined (it sets the constraint naming convention).
from llamaql.persistence.models import _naming  # noqa: F401
from llamaql.persistence.models._time import UTCDateTime, utc_now
from llamaql.persistence.models.conversation import Conversation
from llamaql.persistence.models.event import Event
from llamaql.persistence.models.message import Message
from llamaql.ports.values import MessageKind, MessageStatus

__all__ = [
    "Conversation",
    "Event",
    "Message",
    "MessageKind",
    "MessageStatus",
    "UTCDateTime",
    "utc_now",
]
