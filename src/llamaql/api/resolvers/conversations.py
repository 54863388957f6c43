"""Root fields for conversations and the model."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from llamaql.api.context import Context
from llamaql.api.inputs import CreateConversationInput, UpdateConversationInput
from llamaql.api.types import Conversation, ConversationConnection, ModelInfo
from llamaql.services.conversations import ConversationService
from llamaql.services.ids import parse_id
from llamaql.services.models_info import ModelInfoService


async def conversations(
    info: Info[Context, None], first: int | None = 20, after: str | None = None
) -> ConversationConnection:
    user_id = info.context.require_user()
    service = info.context.resolve(ConversationService)
    page = await service.list_conversations(
        user_id, first=20 if first is None else first, after=after
    )
    return ConversationConnection.from_page(page)


async def conversation(info: Info[Context, None], id: strawberry.ID) -> Conversation | None:
    user_id = info.context.require_user()
    service = info.context.resolve(ConversationService)
    found = await service.get_conversation(user_id, parse_id(id))
    return Conversation.from_value(found) if found else None


async def model(info: Info[Context, None]) -> ModelInfo:
    info.context.require_user()
    return ModelInfo.from_value(await info.context.resolve(ModelInfoService).model_info())


async def create_conversation(
    info: Info[Context, None], input: CreateConversationInput | None = None
) -> Conversation:
    user_id = info.context.require_user()
    service = info.context.resolve(ConversationService)
    given = input or CreateConversationInput()
    created = await service.create_conversation(
        user_id,
        title=given.title,
        system_prompt=given.system_prompt,
        options=given.options.to_dict() if given.options else None,
    )
    return Conversation.from_value(created)


async def update_conversation(
    info: Info[Context, None], id: strawberry.ID, input: UpdateConversationInput
) -> Conversation:
    user_id = info.context.require_user()
    service = info.context.resolve(ConversationService)
    updated = await service.update_conversation(user_id, parse_id(id), input.changes())
    return Conversation.from_value(updated)


async def delete_conversation(info: Info[Context, None], id: strawberry.ID) -> strawberry.ID:
    user_id = info.context.require_user()
    service = info.context.resolve(ConversationService)
    deleted = await service.delete_conversation(user_id, parse_id(id))
    return strawberry.ID(str(deleted))
