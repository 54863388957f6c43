"""The Query root."""

from __future__ import annotations

import strawberry

from llamaql.api.resolvers import conversations as r
from llamaql.api.resolvers import search as search_resolver
from llamaql.api.resolvers import usage
from llamaql.api.resolvers import viewer as viewer_resolver
from llamaql.api.search import SearchHitConnection
from llamaql.api.types import ContextUsage, Conversation, ConversationConnection, ModelInfo
from llamaql.api.viewer import Viewer


@strawberry.type
class Query:
    conversations: ConversationConnection = strawberry.field(
        resolver=r.conversations, description="Newest activity first; first is 1 to 100"
    )
    conversation: Conversation | None = strawberry.field(
        resolver=r.conversation, description="Null if absent or not yours"
    )
    model: ModelInfo = strawberry.field(
        resolver=r.model,
        description="A model by name (the models query lists them); without a name, the "
        "default model. BAD_USER_INPUT for an unknown name",
    )
    models: list[ModelInfo] = strawberry.field(
        resolver=r.models,
        description="Every model of the models folder (LLAMAQL_MODELS_DIR), read again "
        "at each query, by name",
    )
    context_usage: ContextUsage = strawberry.field(
        resolver=usage.context_usage,
        description="What sending text now would use of the context (nothing is sent)",
    )
    search: SearchHitConnection = strawberry.field(
        resolver=search_resolver.search,
        description=(
            "Your messages and conversation titles containing every word of query (each "
            "word matches words it begins), best match first; first is 1 to 100"
        ),
    )
    viewer: Viewer = strawberry.field(
        resolver=viewer_resolver.viewer,
        description="The user this request is served as (the page asks before anything else)",
    )
