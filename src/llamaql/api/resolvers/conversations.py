"""Root fields for conversations and the model."""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from graphql import FieldNode, GraphQLError, GraphQLObjectType
from graphql.execution.values import VariableValues, get_argument_values
from strawberry.types import Info

from llamaql.api.context import Context
from llamaql.api.inputs import CreateConversationInput, UpdateConversationInput
from llamaql.api.types import Conversation, ConversationConnection, ModelInfo
from llamaql.ports.errors import DomainError
from llamaql.services.conversations import ConversationService, MessagePageRequest
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
    conversation_id = parse_id(id)
    asked = _pages_asked(info, conversation_id)
    found, pages = await service.conversation_with_pages(user_id, conversation_id, asked)
    return Conversation.from_value(found, pages) if found else None


def _pages_asked(info: Info[Context, None], conversation_id: uuid.UUID) -> list[MessagePageRequest]:
    """The `messages` pages the document asks of this conversation, so that they are read
    in the conversation's unit of work instead of a second one. Only plain selections
    are read ahead, with their arguments coerced as graphql-core will coerce them: a page
    behind a directive or a fragment, or one whose arguments do not parse, is left to
    `Conversation.messages` and the loader, which answer (and refuse) as before."""
    raw = info._raw_info
    kind = raw.schema.get_type("Conversation")
    if not isinstance(kind, GraphQLObjectType):
        return []
    definition = kind.fields["messages"]
    # The operation's coerced variables (Strawberry's resolve info holds their values only).
    given: Any = raw.variable_values
    variables = (
        given
        if isinstance(given, VariableValues)
        else VariableValues(sources={}, coerced=dict(given))
    )
    asked: list[MessagePageRequest] = []
    for node in raw.field_nodes:
        for selection in node.selection_set.selections if node.selection_set else ():
            if not isinstance(selection, FieldNode) or selection.name.value != "messages":
                continue
            if selection.directives:
                continue
            try:
                arguments = get_argument_values(definition, selection, variables)
                first = arguments.get("first")
                asked.append(
                    MessagePageRequest.parse(
                        conversation_id,
                        first=20 if first is None else first,
                        after=arguments.get("after"),
                    )
                )
            except (GraphQLError, DomainError):
                continue
    return asked


async def model(info: Info[Context, None], name: str | None = None) -> ModelInfo:
    info.context.require_user()
    found = await info.context.resolve(ModelInfoService).model_info(name)
    return ModelInfo.from_value(*found)


async def models(info: Info[Context, None]) -> list[ModelInfo]:
    info.context.require_user()
    found = await info.context.resolve(ModelInfoService).models()
    return [ModelInfo.from_value(*pair) for pair in found]


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
        model=given.model,
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
