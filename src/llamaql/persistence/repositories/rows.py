"""Rows to values: what the repositories hand out instead of their SQLModel rows.

A loaded row keeps its column values in its `__dict__`; reading them there, not through
the instrumented attributes, and building slotted dataclasses without validation keeps
a page of rows at a few microseconds each. A row with an expired column (never one a
repository just loaded or flushed) is read through its attributes, which load it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import fields
from operator import itemgetter
from typing import Any

from llamaql.persistence.models import Conversation as ConversationRow
from llamaql.persistence.models import Message as MessageRow
from llamaql.ports.values import USAGE_FIELDS, Conversation, Message, SamplingOptions, Usage

_CONVERSATION_COLUMNS = frozenset(ConversationRow.model_fields)
_MESSAGE_COLUMNS = frozenset(MessageRow.model_fields)
_NO_OPTIONS = SamplingOptions()  # most conversations' (frozen: one serves them all)

PAGE_COLUMNS: tuple[Any, ...] = tuple(
    column
    for column in MessageRow.__table__.columns  # type: ignore[attr-defined]
    if column.name not in ("user_id", "conversation_id")
)
"""What a page of messages selects, in table order: every column but the user and the
conversation, which the page's statement filters on (`message_from_page_row` reads them
by position)."""
_AT = {column.name: index for index, column in enumerate(PAGE_COLUMNS)}
# Message's fields around its conversation, user and usage, by position (checked below).
_LEAD_FIELDS = ("id",)
_HEAD_FIELDS = (
    "seq", "parent_id", "kind", "text", "status", "finish_reason", "replica_id",
    "heartbeat_at",
)  # fmt: skip
_TAIL_FIELDS = ("dropped_messages", "created_at", "updated_at", "model")
_OWNERS = ("conversation_id", "user_id")
if (*_LEAD_FIELDS, *_OWNERS, *_HEAD_FIELDS, "usage", *_TAIL_FIELDS) != tuple(
    field.name for field in fields(Message)
):
    raise RuntimeError("rows.message_from_page_row no longer matches the Message value")
_ID = _AT["id"]
_HEAD = itemgetter(*(_AT[name] for name in _HEAD_FIELDS))
_TAIL = itemgetter(*(_AT[name] for name in _TAIL_FIELDS))
_FIGURES = itemgetter(*(_AT[name] for name in USAGE_FIELDS))
_PROMPT_TOKENS = _AT["prompt_tokens"]


def _columns(row: ConversationRow | MessageRow, names: frozenset[str]) -> dict[str, Any]:
    loaded: dict[str, Any] = row.__dict__
    if names <= loaded.keys():
        return loaded
    return {name: getattr(row, name) for name in names}


def conversation_value(row: ConversationRow) -> Conversation:
    return conversation_from_columns(_columns(row, _CONVERSATION_COLUMNS))


def conversation_from_columns(c: Mapping[Any, Any]) -> Conversation:
    """A conversation from its columns by name (a loaded row's, or a Core row's mapping)."""
    return Conversation(
        id=c["id"],
        user_id=c["user_id"],
        title=c["title"],
        system_prompt=c["system_prompt"],
        current_leaf_id=c["current_leaf_id"],
        options=SamplingOptions.from_dict(options) if (options := c["options"]) else _NO_OPTIONS,
        created_at=c["created_at"],
        updated_at=c["updated_at"],
        model=c["model"],
    )


def message_value(row: MessageRow) -> Message:
    return message_from_columns(_columns(row, _MESSAGE_COLUMNS))


def message_from_columns(m: Mapping[Any, Any]) -> Message:
    """A message from its columns by name (a loaded row's, or a Core row's mapping)."""
    return Message(
        id=m["id"],
        conversation_id=m["conversation_id"],
        user_id=m["user_id"],
        seq=m["seq"],
        parent_id=m["parent_id"],
        kind=m["kind"],
        text=m["text"],
        status=m["status"],
        finish_reason=m["finish_reason"],
        replica_id=m["replica_id"],
        heartbeat_at=m["heartbeat_at"],
        usage=_usage(m),
        dropped_messages=m["dropped_messages"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        model=m["model"],
    )


def message_from_page_row(
    row: Sequence[Any], conversation_id: uuid.UUID, user_id: uuid.UUID
) -> Message:
    """A message from a row of PAGE_COLUMNS, by position, with its conversation and user
    (those the page's statement filtered on): a page's rows are read this way (a row's
    mapping and a lookup by name per column, and parsing the same two ids again for
    every row, cost more than the rest of its value); equal to
    `message_from_columns(row._mapping)` for a row of every column."""
    seq, parent_id, kind, text, status, finish_reason, replica_id, heartbeat_at = _HEAD(row)
    dropped_messages, created_at, updated_at, model = _TAIL(row)
    usage = None if row[_PROMPT_TOKENS] is None else _usage_of(_FIGURES(row))
    return Message(
        row[_ID], conversation_id, user_id, seq, parent_id, kind, text, status,
        finish_reason, replica_id, heartbeat_at, usage, dropped_messages, created_at,
        updated_at, model,
    )  # fmt: skip


def _usage_of(figures: Sequence[Any]) -> Usage:
    """Usage from its figures in USAGE_FIELDS order (a missing one as 0)."""
    return Usage(
        **{
            name: value
            for name, value in zip(USAGE_FIELDS, figures, strict=True)
            if value is not None
        }
    )


def _usage(columns: Mapping[Any, Any]) -> Usage | None:
    """A reply's usage, from a column per figure; None while it has none (no prompt
    count), a figure missing as 0."""
    if columns["prompt_tokens"] is None:
        return None
    return Usage(**{name: columns[name] for name in USAGE_FIELDS if columns[name] is not None})


def write_usage(row: MessageRow, usage: Usage) -> None:
    """Set the row's usage columns to `usage`'s figures."""
    for name in USAGE_FIELDS:
        setattr(row, name, getattr(usage, name))
