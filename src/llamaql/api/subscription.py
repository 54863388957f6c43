"""The Subscription root: sendMessage, regenerate and editMessage stream a reply over
WebSocket, and replyStream follows one (again) from any socket or replica."""

from __future__ import annotations

import strawberry

from llamaql.api.resolvers import chat, events, pulls


@strawberry.type
class Subscription:
    send_message = strawberry.subscription(
        resolver=chat.send_message,
        description=(
            "Send a message and stream the reply: MessageQueued first (again when the "
            "queue position moves), TokenDelta with the text since the previous one, then "
            "MessageCompleted or MessageFailed. The reply belongs to the server: closing the "
            "stream leaves it running to its end (saved COMPLETE), unless cancelOnClose is "
            "true; cancelGeneration stops it, and replyStream follows it from any socket."
        ),
    )

    regenerate = strawberry.subscription(
        resolver=chat.regenerate,
        description=(
            "A new reply beside assistant message `messageId` (to the same user message, "
            "which MessageQueued carries), streamed like sendMessage's; its branch "
            "becomes current. The same rules and events as sendMessage."
        ),
    )
    edit_message = strawberry.subscription(
        resolver=chat.edit_message,
        description=(
            "A new user message beside user message `messageId` (same parent), then its "
            "reply, streamed like sendMessage's; its branch becomes current. The same "
            "rules and events as sendMessage."
        ),
    )
    reply_stream = strawberry.subscription(
        resolver=chat.reply_stream,
        description=(
            "Follow one of your replies (an assistant message) from any socket or replica: "
            "first its text from character `after` as one TokenDelta (none when empty), "
            "then the live TokenDeltas, then the terminal event its sendMessage stream got "
            "(MessageCompleted, or MessageFailed with the stored assistantMessage). A "
            "reply still queued first gets MessageQueued, again as its position moves; one "
            "that already ended gets the rest of its text and its terminal event at once. "
            "The TokenDeltas' texts joined equal the stored text from `after`. Closing "
            "it never affects the reply. NOT_FOUND for another user's, a user message or "
            "an unknown id; BAD_USER_INPUT when `after` is negative or beyond the text."
        ),
    )
    events = strawberry.subscription(
        resolver=events.events,
        description=(
            "The caller's live feed: their conversations created, updated (title, "
            "including the model's; system prompt; options; model) and deleted, replies "
            "queued, started and finished, branches selected, from every tab, device and "
            "replica, in commit order. Without `since` it starts now; with `since` (an "
            "event's cursor) it first sends what came after it, or one EventsReset when "
            "that is older than LLAMAQL_EVENT_RETENTION_SECONDS. A malformed cursor is "
            "BAD_USER_INPUT"
        ),
    )
    pull_progress = strawberry.subscription(
        resolver=pulls.pull_progress,
        description=(
            "A model pull's progress (pullModel's id): now, then as it changes, ending "
            "with COMPLETE or FAILED. Users in LLAMAQL_MODEL_ADMINS only"
        ),
    )


SUBSCRIPTION: type | None = Subscription
