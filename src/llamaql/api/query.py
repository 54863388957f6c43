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
    model: ModelInfo = strawberry.field(resolver=r.model)
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
