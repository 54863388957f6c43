"""The message repository's statements, built once with bound parameters (building one
cost more than running it: ~6 ms for a messages page); `SqlMessageRepository` binds
their values per call (see persistence/repositories/conversations.py for the same pattern)."""

from __future__ import annotations

from typing import Any, NamedTuple, cast

from sqlalchemy import Interval, and_, bindparam, case, func, insert, or_
from sqlalchemy import select as sa_select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select

from llamaql.persistence.models import Message, MessageKind, MessageStatus
from llamaql.persistence.repositories.branches import on_current_branch
from llamaql.persistence.repositories.rows import PAGE_COLUMNS

GET = select(Message).where(
    col(Message.id) == bindparam("message_id"), col(Message.user_id) == bindparam("user_id")
)
_IN_CONVERSATION = (
    col(Message.conversation_id) == bindparam("conversation_id"),
    col(Message.user_id) == bindparam("user_id"),
)
GENERATING = (
    select(Message.id)
    .where(*_IN_CONVERSATION, col(Message.status) == MessageStatus.GENERATING.value)
    .limit(1)
)
_GENERATING_ANY = func.coalesce(
    func.max(case((col(Message.status) == MessageStatus.GENERATING.value, 1), else_=0)), 0
)
COUNT_AND_GENERATING = select(func.count(), _GENERATING_ANY).where(*_IN_CONVERSATION)


def _live_replies(*alive: ColumnElement[bool]) -> Any:
    """The user's GENERATING replies (the status index finds the few such rows; the user
    filter narrows them), only those `alive` when given."""
    return (
        select(func.count())
        .select_from(Message)
        .where(
            col(Message.user_id) == bindparam("user_id"),
            col(Message.status) == MessageStatus.GENERATING.value,
            col(Message.kind) == int(MessageKind.BOT),
            *alive,
        )
    )


class ByClock(NamedTuple):
    """One statement counting live replies, in a variant per heartbeat rule: every one
    (`plain`), or only those whose heartbeat is recent by the server's clock (SQLite:
    `since`, bound as `alive_since`) or by PostgreSQL's (`for_`, `alive_for` before
    now())."""

    plain: Any
    since: Any
    for_: Any


_ALIVE_SINCE = col(Message.heartbeat_at) >= bindparam("alive_since")
_ALIVE_FOR = col(Message.heartbeat_at) >= func.now() - bindparam("alive_for", type_=Interval())
LIVE_REPLIES = ByClock(_live_replies(), _live_replies(_ALIVE_SINCE), _live_replies(_ALIVE_FOR))


def _exchange_counts(live: Any) -> Any:
    """COUNT_AND_GENERATING and the user's live replies (`live`) in one statement: the
    two checks of a send cost one trip to the database."""
    # Not correlated: the inner `messages` is the user's, not the outer row's.
    inner = live.correlate(None).scalar_subquery()
    return select(func.count(), _GENERATING_ANY, inner).where(*_IN_CONVERSATION)


EXCHANGE_COUNTS = ByClock(*(_exchange_counts(live) for live in LIVE_REPLIES))


_TABLE: Any = Message.__table__  # type: ignore[attr-defined]


def _insert(heartbeat_at: Any) -> Any:
    """A message after the conversation's newest (seq), its values bound as `m_*` (an
    INSERT's parameters may not be named like its columns)."""
    next_seq = (
        select(func.coalesce(func.max(Message.seq), 0) + 1)
        .where(col(Message.conversation_id) == bindparam("m_conversation_id"))
        .scalar_subquery()
    )
    values: dict[str, Any] = {
        name: bindparam(f"m_{name}")
        for name in (
            "id",
            "conversation_id",
            "user_id",
            "parent_id",
            "kind",
            "text",
            "status",
            "model",
        )
    }
    # Core, on the table, returning plain columns: the ORM's INSERT ... RETURNING of an
    # entity (its bulk-insert path and a new identity in the session) was most of an
    # add's CPU, and nothing reads the row through the session afterwards.
    return (
        insert(_TABLE)
        .values(
            **values,
            seq=next_seq,
            created_at=bindparam("m_now"),
            updated_at=bindparam("m_now"),
            replica_id=bindparam("m_replica_id"),
            heartbeat_at=heartbeat_at,
        )
        .returning(*_TABLE.columns)
    )


INSERT = _insert(bindparam("m_heartbeat_at"))
INSERT_BEATING_NOW = _insert(func.now())


def _branch_of(conversations: ColumnElement[Any]) -> ColumnElement[bool]:
    """on_current_branch over bound parameters: the user and the conversations' ids."""
    user: Any = bindparam("user_id")
    return on_current_branch(user, cast(Any, conversations))


COUNTS = (
    select(col(Message.conversation_id), func.count())
    .where(
        col(Message.user_id) == bindparam("user_id"),
        col(Message.conversation_id).in_(bindparam("conversation_ids", expanding=True)),
        _branch_of(bindparam("conversation_ids", expanding=True)),
    )
    .group_by(col(Message.conversation_id))
)
# list_pages' statements by shape (which conversations have a cursor): building one
# took about 6 ms, running it a fraction of that.
_PAGES: dict[tuple[bool, ...], Any] = {}
_PAGE_SHAPES_KEPT = 64


def pages_statement(shape: tuple[bool, ...]) -> Any:
    """Each conversation's messages (`c{i}`, after seq `a{i}` where the shape says so)
    on its current branch, numbered in seq order; the first `limit` of each kept."""
    statement = _PAGES.get(shape)
    if statement is not None:
        return statement
    wanted = [
        and_(
            col(Message.conversation_id) == bindparam(f"c{i}"),
            col(Message.seq) > bindparam(f"a{i}"),
        )
        if after
        else col(Message.conversation_id) == bindparam(f"c{i}")
        for i, after in enumerate(shape)
    ]
    rank = (
        func.row_number()
        .over(partition_by=col(Message.conversation_id), order_by=col(Message.seq))
        .label("rank")
    )
    ranked = (
        select(Message, rank)
        .where(
            col(Message.user_id) == bindparam("user_id"),
            or_(*wanted),
            _branch_of(bindparam("conversation_ids", expanding=True)),
        )
        .subquery()
    )
    # Plain rows (Core), not ORM instances, as the conversations page (see messages.py),
    # of PAGE_COLUMNS (rows.message_from_page_row reads them by position), then, where
    # the statement reads several conversations, the conversation of each row.
    columns = [ranked.c[column.name] for column in PAGE_COLUMNS]
    if len(shape) > 1:
        columns.append(ranked.c.conversation_id)
    statement = (
        sa_select(*columns)
        .where(ranked.c.rank <= bindparam("limit"))
        .order_by(ranked.c.conversation_id, ranked.c.seq)
    )
    if len(_PAGES) >= _PAGE_SHAPES_KEPT:
        _PAGES.pop(next(iter(_PAGES)))
    _PAGES[shape] = statement
    return statement
