"""contextUsage: context -> ContextUsageService -> schema type."""

from __future__ import annotations

import punq
import strawberry
from strawberry.types import Info

from llamaql.api.context import Context
from llamaql.api.types import ContextUsage
from llamaql.ports.errors import DomainError
from llamaql.services.context_usage import ContextUsageService
from llamaql.services.ids import parse_id


async def context_usage(
    info: Info[Context, None], conversation_id: strawberry.ID, text: str | None = None
) -> ContextUsage:
    """What sending `text` now would use: prompt, reply room, dropped messages, fits."""
    user_id = info.context.require_user()
    conversation = parse_id(conversation_id, field="conversationId")
    try:
        service = info.context.resolve(ContextUsageService)
    except punq.MissingDependencyError:
        raise DomainError("no model is loaded on this server", code="ENGINE_ERROR") from None
    usage = await service.usage(user_id=user_id, conversation_id=conversation, text=text)
    return ContextUsage.from_usage(usage)
