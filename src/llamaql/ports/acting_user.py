"""The user on whose behalf the current task works.

Each GraphQL operation names its user (the API's ApiOperation extension); tasks it starts
inherit the name, so the database share (`db_share`) counts their units of work toward
that user. Work of the server itself (start-up recovery, heartbeats) names no user.
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid

_acting_user: contextvars.ContextVar[uuid.UUID | None] = contextvars.ContextVar(
    "llamaql_acting_user", default=None
)


def acting_for(user_id: uuid.UUID | None) -> contextvars.Token[uuid.UUID | None]:
    """Units of work opened from here on (in this task and tasks it starts) are this
    user's; None: the server's own."""
    return _acting_user.set(user_id)


def stop_acting(token: contextvars.Token[uuid.UUID | None]) -> None:
    """Undo `acting_for`; a token from another context (a task that moved on) is ignored."""
    with contextlib.suppress(ValueError):
        _acting_user.reset(token)


def acting_user() -> uuid.UUID | None:
    """The user the current task works for; None: the server's own work."""
    return _acting_user.get()
