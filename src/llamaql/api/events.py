"""sendMessage's events (the ChatEvent union in schema.graphql). No two members share a
field name with different types, so a client can select every member in one document
without aliases."""

from __future__ import annotations

from typing import Annotated

import strawberry

from llamaql.api.enums import ErrorCode
from llamaql.api.types import Message


@strawberry.type(description="The user message is stored and the reply is queued")
class MessageQueued:
    user_message: Message
    assistant_message_id: strawberry.ID
    position: int = strawberry.field(
        description="0: the reply is generating (or starts at the next step); n >= 1: it "
        "waits, n-th in line for a free sequence (fair across users). Sent again on change"
    )
    loading: bool = strawberry.field(
        description="True while the reply waits for its model to load (see the models "
        "query). Sent again when it changes"
    )


@strawberry.type(
    description="The reply's text since the previous TokenDelta: the first piece at once, "
    "then at most one per LLAMAQL_STREAM_INTERVAL_MS"
)
class TokenDelta:
    message_id: strawberry.ID
    text: str


@strawberry.type(description="The reply is stored (COMPLETE, or CANCELLED with its text)")
class MessageCompleted:
    message: Message


@strawberry.type(description="The request failed; assistantMessage is null if nothing was stored")
class MessageFailed:
    code: ErrorCode
    reason: str
    retryable: bool
    assistant_message: Message | None


ChatEvent = Annotated[
    MessageQueued | TokenDelta | MessageCompleted | MessageFailed,
    strawberry.union("ChatEvent"),
]
