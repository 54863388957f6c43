"""The search root field: context -> SearchService -> schema types."""

from __future__ import annotations

from strawberry.types import Info

from llamaql.api.context import Context
from llamaql.api.search import SearchHitConnection
from llamaql.services.search import SearchService


async def search(
    info: Info[Context, None], query: str, first: int | None = 20, after: str | None = None
) -> SearchHitConnection:
    user_id = info.context.require_user()
    service = info.context.resolve(SearchService)
    page = await service.search(user_id, query, first=20 if first is None else first, after=after)
    return SearchHitConnection.from_page(page)
