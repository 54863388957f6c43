"""The Mutation root. cancelGeneration (chat) is added here as one more field."""

from __future__ import annotations

import strawberry

from llamaql.api.resolvers import chat, pulls
from llamaql.api.resolvers import conversations as r
from llamaql.api.types import Conversation


@strawberry.type
class Mutation:
    create_conversation: Conversation = strawberry.field(resolver=r.create_conversation)
    update_conversation: Conversation = strawberry.field(resolver=r.update_conversation)
    delete_conversation: strawberry.ID = strawberry.field(
        resolver=r.delete_conversation, description="Deletes its messages too"
    )
    cancel_generation: bool = strawberry.field(
        resolver=chat.cancel_generation,
        description="Stop your reply in progress; its text so far is kept (CANCELLED)",
    )
    select_branch: Conversation = strawberry.field(
        resolver=chat.select_branch,
        description=(
            "Make the branch through `messageId` (down to the newest message under it) "
            "current: `Conversation.messages` and later prompts follow it"
        ),
    )
    pull_model: strawberry.ID = strawberry.field(
        resolver=pulls.pull_model,
        description=(
            "Download a GGUF model (http(s):// or hf://owner/repo/file.gguf) into the models "
            "folder as `name` (default: the file's name); its progress is pullProgress(id). "
            "`replace` overwrites a model of that name. Users in LLAMAQL_MODEL_ADMINS only"
        ),
    )
    delete_model: str = strawberry.field(
        resolver=pulls.delete_model,
        description="Remove a model's file from the models folder; users in "
        "LLAMAQL_MODEL_ADMINS only",
    )
