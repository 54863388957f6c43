"""Conversation use cases: list, get, create, update, delete, and a conversation's messages.

Each method opens one short unit of work; the service itself holds no session, so one
instance serves every request (a singleton in the container).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llamaql.ports.engine import EngineUnavailableError, Requester, UnknownModelError
from llamaql.ports.errors import BadInputError, DomainError, NotFoundError
from llamaql.ports.events import EventKind
from llamaql.ports.repositories import UnitOfWork, UnitOfWorkFactory
from llamaql.ports.values import UPDATABLE_FIELDS, Conversation, Message, Page
from llamaql.services.ids import (
    decode_conversation_cursor,
    decode_message_cursor,
    encode_conversation_cursor,
    encode_message_cursor,
)
from llamaql.services.options import validate_options

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100
MAX_TITLE_CHARS = 200


@dataclass(frozen=True, slots=True)
class MessagePageRequest:
    """One `messages(first, after)` of one conversation, checked: a DataLoader key."""

    conversation_id: uuid.UUID
    first: int
    after_seq: int | None

    @classmethod
    def parse(
        cls, conversation_id: uuid.UUID, *, first: int, after: str | None
    ) -> MessagePageRequest:
        """BadInputError for a page size outside 1..100 or a forged cursor."""
        return cls(
            conversation_id=conversation_id,
            first=check_page_size(first),
            after_seq=decode_message_cursor(after) if after is not None else None,
        )


def _rounds(requests: Sequence[MessagePageRequest]) -> list[list[MessagePageRequest]]:
    """Distinct requests grouped by page size, each conversation at most once a group."""
    if len(requests) == 1:  # most responses (`conversation(id) { messages }`)
        return [list(requests)]
    rounds: dict[tuple[int, int], list[MessagePageRequest]] = {}
    seen: dict[tuple[int, uuid.UUID], int] = {}
    for request in dict.fromkeys(requests):
        turn = seen.get((request.first, request.conversation_id), 0)
        seen[(request.first, request.conversation_id)] = turn + 1
        rounds.setdefault((request.first, turn), []).append(request)
    return list(rounds.values())


def check_page_size(first: int) -> int:
    """`first` must be 1..100: a client cannot ask for unbounded pages."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise BadInputError(f"first must be between 1 and {MAX_PAGE_SIZE}, got {first}")
    return first


class ConversationService:
    """Create, browse, change and delete one user's conversations."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        *,
        max_text_chars: int = 32000,
        max_tokens_limit: int | None = None,
        stop_replies: Callable[[uuid.UUID, uuid.UUID], None] | None = None,
        forget_kv: Callable[[Requester], None] | None = None,
        check_model: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._max_text_chars = max_text_chars
        self._max_tokens_limit = max_tokens_limit
        # Stops a deleted conversation's reply in progress (ChatService.stop_replies).
        self._stop_replies = stop_replies
        # Drops a deleted conversation's KV state (memory, sequence, file): Engine.forget.
        self._forget_kv = forget_kv
        # Refuses a model name the engine does not have (Engine.check_model).
        self._check_model = check_model

    async def list_conversations(
        self, user_id: uuid.UUID, *, first: int = 20, after: str | None = None
    ) -> Page[Conversation]:
        """Newest activity first."""
        limit = check_page_size(first)
        key = decode_conversation_cursor(after) if after is not None else None
        async with self._uow_factory() as uow:
            rows = list(
                await uow.conversations.list_page(user_id=user_id, limit=limit + 1, after=key)
            )
            total = await uow.conversations.count(user_id=user_id)
        edges = [(encode_conversation_cursor(c.updated_at, c.id), c) for c in rows[:limit]]
        return Page(edges=edges, has_next_page=len(rows) > limit, total_count=total)

    async def create_conversation(
        self,
        user_id: uuid.UUID,
        *,
        title: str | None = None,
        system_prompt: str | None = None,
        options: Mapping[str, Any] | None = None,
        model: str | None = None,
    ) -> Conversation:
        values = self._clean(
            {"title": title, "system_prompt": system_prompt, "options": options or {}}
        )
        if model is not None:
            values["model"] = await self._known_model(model)
        async with self._uow_factory() as uow:
            conversation = await uow.conversations.create(user_id=user_id, **values)
            _record(uow, user_id, conversation.id, EventKind.CONVERSATION_CREATED)
            await uow.commit()
        logger.info("conversation %s created", conversation.id)
        return conversation

    async def update_conversation(
        self, user_id: uuid.UUID, conversation_id: uuid.UUID, changes: Mapping[str, Any]
    ) -> Conversation:
        """Apply the given fields only; None clears title/systemPrompt, options replace."""
        unknown = set(changes) - UPDATABLE_FIELDS
        if unknown:
            raise BadInputError(f"cannot update {', '.join(sorted(unknown))}")
        values = self._clean(changes)
        if changes.get("model") is not None:
            values["model"] = await self._known_model(changes["model"])
        elif "model" in changes:
            values["model"] = None  # back to the server's default
        async with self._uow_factory() as uow:
            conversation = await uow.conversations.update(
                user_id=user_id, conversation_id=conversation_id, changes=values
            )
            if conversation is None:
                raise _not_found(conversation_id)
            _record(uow, user_id, conversation_id, EventKind.CONVERSATION_UPDATED)
            await uow.commit()
        return conversation

    async def delete_conversation(
        self, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> uuid.UUID:
        """Delete the conversation and its messages, stop its reply in progress, and drop
        its KV state (in memory and its file)."""
        async with self._uow_factory() as uow:
            deleted = await uow.conversations.delete(
                user_id=user_id, conversation_id=conversation_id
            )
            if not deleted:
                raise _not_found(conversation_id)
            _record(uow, user_id, conversation_id, EventKind.CONVERSATION_DELETED)
            await uow.commit()
        if self._stop_replies is not None:
            self._stop_replies(user_id, conversation_id)
        if self._forget_kv is not None:  # after the cancel: the engine drops what it ends
            self._forget_kv(Requester(str(user_id), str(conversation_id)))
        logger.info("conversation %s deleted", conversation_id)
        return conversation_id

    async def list_messages(
        self,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        *,
        first: int = 20,
        after: str | None = None,
    ) -> Page[Message]:
        """Oldest first."""
        request = MessagePageRequest.parse(conversation_id, first=first, after=after)
        return (await self.message_pages(user_id, [request]))[0]

    async def message_pages(
        self, user_id: uuid.UUID, requests: Sequence[MessagePageRequest]
    ) -> list[Page[Message]]:
        """A page of messages for each request, in order, from one unit of work.

        A response listing 20 conversations with their messages costs two statements per
        page size asked for (pages, counts), not two per conversation. Requests naming
        the same conversation twice (aliases with other cursors) go to later rounds, so
        each round's statement sees a conversation once.
        """
        async with self._uow_factory() as uow:
            pages = await _read_pages(uow, user_id, requests)
        return [pages[request] for request in requests]

    async def conversation_with_pages(
        self,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        requests: Sequence[MessagePageRequest],
    ) -> tuple[Conversation | None, dict[MessagePageRequest, Page[Message]]]:
        """The conversation and the pages of its messages a response asks for, from one
        unit of work (`conversation(id) { messages { ... } }` would open a second one for
        the pages); no pages for a conversation that is not the user's."""
        async with self._uow_factory() as uow:
            found = await uow.conversations.get(user_id=user_id, conversation_id=conversation_id)
            if found is None or not requests:
                return found, {}
            return found, await _read_pages(uow, user_id, requests)

    async def sibling_ids(
        self, user_id: uuid.UUID, message_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        """Each of the user's messages' siblings (same parent: the alternatives that
        regenerate and edit create), oldest first, itself included; others' are absent."""
        async with self._uow_factory() as uow:
            return await uow.branches.sibling_ids(user_id=user_id, message_ids=message_ids)

    async def _known_model(self, model: str) -> str:
        """`model` when the engine has it; BadInputError otherwise (nothing written)."""
        if self._check_model is None:
            raise BadInputError("this server has no models to choose from")
        try:
            await self._check_model(model)
        except UnknownModelError as exc:
            raise BadInputError(str(exc)) from None
        except EngineUnavailableError as exc:
            # A remote engine that has not answered its model list yet: try again later.
            logger.warning("could not check the model %r: %s", model, exc)
            raise DomainError(
                "the model server is unavailable; try again shortly",
                code="ENGINE_ERROR",
                retryable=True,
            ) from None
        return model

    def _clean(self, values: Mapping[str, Any]) -> dict[str, Any]:
        clean: dict[str, Any] = {}
        if "title" in values:
            title = (values["title"] or "").strip()
            if len(title) > MAX_TITLE_CHARS:
                raise BadInputError(
                    f"title must be at most {MAX_TITLE_CHARS} characters, got {len(title)}"
                )
            clean["title"] = title or None
        if "system_prompt" in values:
            prompt = values["system_prompt"] or None
            if prompt is not None and len(prompt) > self._max_text_chars:
                raise BadInputError(
                    f"systemPrompt must be at most {self._max_text_chars} characters, "
                    f"got {len(prompt)}"
                )
            clean["system_prompt"] = prompt
        if "options" in values:
            clean["options"] = validate_options(
                values["options"] or {}, max_tokens_limit=self._max_tokens_limit
            )
        return clean


def _record(
    uow: UnitOfWork, user_id: uuid.UUID, conversation_id: uuid.UUID, kind: EventKind
) -> None:
    """The live feed's event, in the change's unit of work."""
    uow.events.record(user_id=user_id, conversation_id=conversation_id, kind=kind)


def _not_found(conversation_id: uuid.UUID) -> NotFoundError:
    return NotFoundError(f"conversation {conversation_id} not found")


async def _read_pages(
    uow: UnitOfWork, user_id: uuid.UUID, requests: Sequence[MessagePageRequest]
) -> dict[MessagePageRequest, Page[Message]]:
    pages: dict[MessagePageRequest, Page[Message]] = {}
    for round_ in _rounds(requests):
        limit = round_[0].first
        rows = await uow.messages.list_pages(
            user_id=user_id,
            after_seqs={r.conversation_id: r.after_seq for r in round_},
            limit=limit + 1,
        )
        totals = await uow.messages.counts(
            user_id=user_id, conversation_ids=[r.conversation_id for r in round_]
        )
        for request in round_:
            found = rows[request.conversation_id]
            edges = [(encode_message_cursor(m.seq), m) for m in found[:limit]]
            pages[request] = Page(
                edges=edges,
                has_next_page=len(found) > limit,
                total_count=totals[request.conversation_id],
            )
    return pages
