"""The Subscription root: sendMessage streams a reply over WebSocket."""

from __future__ import annotations

import strawberry

from llamaql.resolvers import chat


@strawberry.type
class Subscription:
    send_message = strawberry.subscription(
        resolver=chat.send_message,
        description=(
            "Send a message and stream the reply: MessageQueued first (again when the "
            "queue position moves), TokenDelta with the text since the previous one, then "
            "MessageCompleted or "
            "MessageFailed. Closing the stream cancels the reply and keeps its text."
        ),
    )


SUBSCRIPTION: type | None = Subscription
