"""events(since): the caller's live feed: context -> EventFeeds -> ViewerEvent."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from strawberry.types import Info

from llamaql.api.context import Context
from llamaql.api.viewer_events import ViewerEvent, viewer_event
from llamaql.services.events.feed import EventFeeds


async def events(
    info: Info[Context, None], since: str | None = None
) -> AsyncGenerator[ViewerEvent, None]:
    """The caller's events after `since` (a cursor of an earlier event), then live ones."""
    user_id = info.context.require_user()
    feed = info.context.resolve(EventFeeds).feed(user_id, since=since)
    async with aclosing(feed) as items:
        async for item in items:
            yield viewer_event(item)
