"""DataLoaders: a nested field of every item of a list is loaded in one batch.

Without them, `conversations(first: 20) { edges { node { messages { ... } } } }` runs
one unit of work (two statements) per conversation. Each `Conversation.messages`
resolver asks the loader instead; the loader collects the keys asked for in one turn of
the event loop and gets all pages in one unit of work (ConversationService.message_pages).

Keys carry the user id, so a batch never mixes users' rows: each user's keys are loaded
with that user's filter. The loaders do not cache: over WebSocket one context serves a
connection's operations, and a page cached by one operation would be stale in the next.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from llamaql.ports.values import Message, Page
from llamaql.services.conversations import ConversationService, MessagePageRequest

MessagePageKey = tuple[uuid.UUID, MessagePageRequest]
"""(user id, checked page request)."""


class MessagePages(DataLoader[MessagePageKey, Page[Message]]):
    """Pages of messages of many conversations, one unit of work per user and batch."""

    def __init__(self, service: ConversationService) -> None:
        super().__init__(load_fn=self._load_batch, cache=False)
        self._service = service

    async def _load_batch(self, keys: list[MessagePageKey]) -> Sequence[Page[Message]]:
        by_user: dict[uuid.UUID, list[MessagePageRequest]] = {}
        for user_id, request in keys:
            by_user.setdefault(user_id, []).append(request)
        found: dict[MessagePageKey, Page[Message]] = {}
        for user_id, requests in by_user.items():
            pages = await self._service.message_pages(user_id, requests)
            found.update(((user_id, r), page) for r, page in zip(requests, pages, strict=True))
        return [found[key] for key in keys]


SiblingKey = tuple[uuid.UUID, uuid.UUID]
"""(user id, message id)."""


class SiblingIds(DataLoader[SiblingKey, list[uuid.UUID]]):
    """Each message's siblings (its alternatives), one unit of work per user and batch:
    `siblingIds` on every message of a page costs one statement, not one per message."""

    def __init__(self, service: ConversationService) -> None:
        super().__init__(load_fn=self._load_batch, cache=False)
        self._service = service

    async def _load_batch(self, keys: list[SiblingKey]) -> Sequence[list[uuid.UUID]]:
        by_user: dict[uuid.UUID, list[uuid.UUID]] = {}
        for user_id, message_id in keys:
            by_user.setdefault(user_id, []).append(message_id)
        found: dict[SiblingKey, list[uuid.UUID]] = {}
        for user_id, message_ids in by_user.items():
            siblings = await self._service.sibling_ids(user_id, message_ids)
            found.update(((user_id, m), ids) for m, ids in siblings.items())
        # A message gone since its page was read still has itself as its only sibling.
        return [found.get(key, [key[1]]) for key in keys]
