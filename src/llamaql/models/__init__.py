"""SQLModel table models (and nothing else)."""

# _naming must run before any table is defined (it sets the constraint naming convention).
from llamaql.models import _naming  # noqa: F401
from llamaql.models._time import UTCDateTime, utc_now
from llamaql.models.conversation import Conversation
from llamaql.models.message import Message
from llamaql.values import MessageKind, MessageStatus

__all__ = ["Conversation", "Message", "MessageKind", "MessageStatus", "UTCDateTime", "utc_now"]
