"""Output types of the contract, built from the shared values and service results."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from llamaql.api.context import Context
from llamaql.api.enums import ROLE_OF_KIND, STATUS_OF_VALUE, MessageStatus, Role
from llamaql.ports import values
from llamaql.ports.values import OPTION_KEYS, USAGE_FIELDS, Page
from llamaql.services.context_usage import ContextUsage as DomainContextUsage
from llamaql.services.conversations import MessagePageRequest


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(description="Token counts and timings of one generated reply")
class Usage:
    prompt_tokens: int
    cached_prompt_tokens: int
    completion_tokens: int
    prompt_ms: float
    generation_ms: float
    tokens_per_second: float

    @classmethod
    def from_value(cls, usage: values.Usage | None) -> Usage | None:
        if usage is None:
            return None
        return cls(**{name: getattr(usage, name) for name in USAGE_FIELDS})


@strawberry.type(description="Sampling settings; null means the server's default")
class GenerationOptions:
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
    seed: int | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None

    @classmethod
    def from_value(cls, options: values.SamplingOptions) -> GenerationOptions:
        given: dict[str, Any] = {key: getattr(options, key) for key in OPTION_KEYS}
        if options.stop is not None:
            given["stop"] = list(options.stop)
        return cls(**given)


async def _sibling_ids(root: Message, info: Info[Context, None]) -> list[strawberry.ID]:
    # Through the request's loader: one query for every message in the response.
    key = (info.context.require_user(), root._uuid)
    return [strawberry.ID(str(i)) for i in await info.context.sibling_ids.load(key)]


@strawberry.type
class Message:
    id: strawberry.ID
    # Kept as UUIDs: the ID scalar writes one as its string only when a response selects
    # it (most reads of a page select neither; two strings per message cost more than
    # the rest of its value).
    conversation_id: uuid.UUID = strawberry.field(graphql_type=strawberry.ID)
    parent_id: uuid.UUID | None = strawberry.field(
        graphql_type=strawberry.ID | None,
        description="The message this one follows; null for a first message",
    )
    role: Role
    text: str
    status: MessageStatus
    created_at: datetime
    finish_reason: str | None
    usage: Usage | None
    model: str | None = strawberry.field(
        description="The model that wrote this reply; null for a user's message"
    )
    _uuid: strawberry.Private[uuid.UUID]

    sibling_ids: list[strawberry.ID] = strawberry.field(
        resolver=_sibling_ids,
        description=(
            "Messages with the same parent (the alternatives regenerate and editMessage "
            "create), oldest first, this one included"
        ),
    )

    @classmethod
    def from_value(cls, message: values.Message) -> Message:
        # The enums by one lookup each, the usage only where there is one: a page builds
        # this for every message (the calls they replace cost more than the lookups).
        kind, status, usage = message.kind, message.status, message.usage
        return cls(
            id=strawberry.ID(str(message.id)),
            conversation_id=message.conversation_id,
            parent_id=message.parent_id,
            _uuid=message.id,
            role=ROLE_OF_KIND.get(kind) or Role.from_kind(kind),
            text=message.text,
            status=STATUS_OF_VALUE.get(status) or MessageStatus.of(status),
            created_at=message.created_at,
            finish_reason=message.finish_reason,
            usage=None if usage is None else Usage.from_value(usage),
            model=message.model,
        )


@strawberry.type
class MessageEdge:
    cursor: str
    node: Message


@strawberry.type
class MessageConnection:
    edges: list[MessageEdge]
    page_info: PageInfo
    total_count: int

    @classmethod
    def from_page(cls, page: Page[values.Message]) -> MessageConnection:
        return cls(
            edges=[MessageEdge(cursor=c, node=Message.from_value(m)) for c, m in page.edges],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            total_count=page.total_count,
        )


def _options_of(root: Conversation) -> GenerationOptions:
    # Built when asked for: most reads of conversations (pages, search hits) never are.
    return GenerationOptions.from_value(root._options)


@strawberry.type
class Conversation:
    id: strawberry.ID
    title: str | None
    system_prompt: str | None
    created_at: datetime
    updated_at: datetime
    options: GenerationOptions = strawberry.field(resolver=_options_of)
    model: str | None = strawberry.field(
        description="The model that answers; null: the server's default at each send"
    )
    _uuid: strawberry.Private[uuid.UUID]
    _options: strawberry.Private[values.SamplingOptions]
    # Pages read with the conversation (`conversation(id)`'s lookahead), by request.
    _pages: strawberry.Private[Mapping[MessagePageRequest, Page[values.Message]]]

    @strawberry.field
    async def messages(
        self, info: Info[Context, None], first: int | None = 20, after: str | None = None
    ) -> MessageConnection:
        request = MessagePageRequest.parse(
            self._uuid, first=20 if first is None else first, after=after
        )
        page = self._pages.get(request)
        if page is None:
            # Through the request's loader: one query for every conversation in the response.
            page = await info.context.message_pages.load((info.context.require_user(), request))
        return MessageConnection.from_page(page)

    @classmethod
    def from_value(
        cls,
        conversation: values.Conversation,
        pages: Mapping[MessagePageRequest, Page[values.Message]] | None = None,
    ) -> Conversation:
        return cls(
            id=strawberry.ID(str(conversation.id)),
            title=conversation.title,
            system_prompt=conversation.system_prompt,
            created_at=conversation.created_at,
            updated_at=conversation.updated_at,
            model=conversation.model,
            _options=conversation.options,
            _uuid=conversation.id,
            _pages=pages or {},
        )


@strawberry.type
class ConversationEdge:
    cursor: str
    node: Conversation


@strawberry.type
class ConversationConnection:
    edges: list[ConversationEdge]
    page_info: PageInfo
    total_count: int

    @classmethod
    def from_page(cls, page: Page[values.Conversation]) -> ConversationConnection:
        return cls(
            edges=[
                ConversationEdge(cursor=c, node=Conversation.from_value(m)) for c, m in page.edges
            ],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            total_count=page.total_count,
        )


@strawberry.type(
    description="A model: its file's facts, the context llamaql gives it, and whether it "
    "is loaded (backend, device, gpuLayers and threads are the loaded engine's)"
)
class ModelInfo:
    name: str
    path: str
    context_size: int
    trained_context: int
    backend: str = strawberry.field(description="cpu, vulkan, or remote (see `engine`)")
    device: str
    gpu_layers: int
    threads: int
    chat_template: bool = strawberry.field(
        description="Whether the model file carries a chat template"
    )
    engine: str = strawberry.field(
        description="Which engine answers: local (llama.cpp in this process) or remote "
        "(an OpenAI-compatible server, LLAMAQL_ENGINE_URL)"
    )
    engine_server: str | None = strawberry.field(
        description="For a remote engine, the kind of server: llama-server, vllm, "
        "llama-cpp-python or openai-compatible; null for the local engine"
    )

    file_size: float = strawberry.field(description="Bytes of the GGUF file")
    architecture: str
    parameters: float = strawberry.field(description="Weights (tensor elements)")
    quantization: str = strawberry.field(description="The file's type: Q4_1, Q8_0, F16, ...")
    default: bool = strawberry.field(description="Conversations without a model use it")
    loaded: bool
    loading: bool
    live_replies: int = strawberry.field(description="Replies generating or queued on it")
    memory_bytes: float = strawberry.field(
        description="Weights and KV in memory while loaded (estimated); 0 when not loaded"
    )

    @classmethod
    def from_value(cls, info: values.ModelInfo, status: values.ModelStatus) -> ModelInfo:
        return cls(
            file_size=status.file_size,
            architecture=status.architecture,
            parameters=status.parameters,
            quantization=status.quantization,
            default=status.is_default,
            loaded=status.loaded,
            loading=status.loading,
            live_replies=status.live_replies,
            memory_bytes=status.memory_bytes,
            name=info.name,
            path=info.path,
            context_size=info.context_size,
            trained_context=info.trained_context,
            backend=info.backend,
            device=info.device,
            gpu_layers=info.gpu_layers,
            threads=info.threads,
            chat_template=info.has_chat_template,
            engine=info.engine,
            engine_server=info.engine_server,
        )


@strawberry.type(description="What sending a message now would use of the context")
class ContextUsage:
    context_size: int = strawberry.field(description="Tokens one conversation may use")
    prompt_tokens: int = strawberry.field(description="The prompt, after dropped messages")
    reply_tokens: int = strawberry.field(description="Room kept for the reply")
    dropped_messages: int = strawberry.field(description="Oldest messages left out to fit")
    fits: bool = strawberry.field(description="False: the send would be CONTEXT_OVERFLOW")

    @classmethod
    def from_usage(cls, usage: DomainContextUsage) -> ContextUsage:
        return cls(
            context_size=usage.context_size,
            prompt_tokens=usage.prompt_tokens,
            reply_tokens=usage.reply_tokens,
            dropped_messages=usage.dropped_messages,
            fits=usage.fits,
        )
