"""The `events` feed's types (the ViewerEvent union in schema.graphql).

Every member has `cursor`; all but EventsReset `conversationId`; reply events
`messageId`. No two members share a field name with different types, so a client
selects every member in one document without aliases. ConversationCreated and
ConversationUpdated carry the conversation as it is now (null once deleted), read when
the event is sent, so a client updates its list without a refetch.
"""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from llamaql.api.context import Context
from llamaql.api.enums import MessageStatus
from llamaql.api.types import Conversation
from llamaql.ports.events import EventKind, StoredEvent
from llamaql.services.conversations import ConversationService
from llamaql.services.events.feed import FeedItem, Reset, cursor_of
from llamaql.services.ids import parse_id


async def _conversation(
    root: ConversationCreated | ConversationUpdated, info: Info[Context, None]
) -> Conversation | None:
    service = info.context.resolve(ConversationService)
    found, _ = await service.conversation_with_pages(
        info.context.require_user(), parse_id(root.conversation_id), []
    )
    return Conversation.from_value(found) if found is not None else None


@strawberry.type(description="A conversation was created (on any tab, device or replica)")
class ConversationCreated:
    cursor: str
    conversation_id: strawberry.ID
    conversation: Conversation | None = strawberry.field(
        resolver=_conversation, description="As it is now; null once deleted"
    )


@strawberry.type(
    description="A conversation's title (a user's, the first words of its first message, or "
    "the model's), system prompt, options or model changed"
)
class ConversationUpdated:
    cursor: str
    conversation_id: strawberry.ID
    conversation: Conversation | None = strawberry.field(
        resolver=_conversation, description="As it is now; null once deleted"
    )


@strawberry.type(description="A conversation was deleted, with its messages")
class ConversationDeleted:
    cursor: str
    conversation_id: strawberry.ID


@strawberry.type(
    description="An exchange was stored and its reply `messageId` queued (sendMessage, "
    "regenerate, editMessage); the reply's branch is now the current one"
)
class ReplyQueued:
    cursor: str
    conversation_id: strawberry.ID
    message_id: strawberry.ID


@strawberry.type(description="Reply `messageId` produced its first text (replyStream follows it)")
class ReplyStarted:
    cursor: str
    conversation_id: strawberry.ID
    message_id: strawberry.ID


@strawberry.type(
    description="Reply `messageId` ended and is stored with `status` (COMPLETE, CANCELLED, "
    "or FAILED: an error, or interrupted when its server stopped)"
)
class ReplyFinished:
    cursor: str
    conversation_id: strawberry.ID
    message_id: strawberry.ID
    status: MessageStatus


@strawberry.type(description="selectBranch made the branch ending at `messageId` current")
class BranchSelected:
    cursor: str
    conversation_id: strawberry.ID
    message_id: strawberry.ID


@strawberry.type(
    description="The feed is live from `cursor` on. The first event of a feed opened "
    "without `since` (missed: false: fetch what you show now, and every later change "
    "arrives as an event); or, with missed: true, events after `since` may be lost (it is "
    "older than LLAMAQL_EVENT_RETENTION_SECONDS, or the client read too slowly): refetch"
)
class EventsReset:
    cursor: str
    missed: bool


ViewerEvent = Annotated[
    ConversationCreated
    | ConversationUpdated
    | ConversationDeleted
    | ReplyQueued
    | ReplyStarted
    | ReplyFinished
    | BranchSelected
    | EventsReset,
    strawberry.union("ViewerEvent"),
]

_WITH_MESSAGE: dict[EventKind, type[ReplyQueued | ReplyStarted | BranchSelected]] = {
    EventKind.REPLY_QUEUED: ReplyQueued,
    EventKind.REPLY_STARTED: ReplyStarted,
    EventKind.BRANCH_SELECTED: BranchSelected,
}


def viewer_event(item: FeedItem) -> ViewerEvent:
    """The schema type of one feed item."""
    if isinstance(item, Reset):
        return EventsReset(cursor=item.cursor.encode(), missed=item.missed)
    return _stored(item)


def _stored(event: StoredEvent) -> ViewerEvent:
    cursor = cursor_of(event).encode()
    conversation_id = strawberry.ID(str(event.conversation_id))
    kind = event.kind
    if kind is EventKind.CONVERSATION_CREATED:
        return ConversationCreated(cursor=cursor, conversation_id=conversation_id)
    if kind is EventKind.CONVERSATION_UPDATED:
        return ConversationUpdated(cursor=cursor, conversation_id=conversation_id)
    if kind is EventKind.CONVERSATION_DELETED:
        return ConversationDeleted(cursor=cursor, conversation_id=conversation_id)
    message_id = strawberry.ID(str(event.message_id))
    if kind is EventKind.REPLY_FINISHED:
        status = event.status.value if event.status is not None else "FAILED"
        return ReplyFinished(
            cursor=cursor,
            conversation_id=conversation_id,
            message_id=message_id,
            status=MessageStatus(status),
        )
    return _WITH_MESSAGE[kind](
        cursor=cursor, conversation_id=conversation_id, message_id=message_id
    )
