"""viewer: the caller's own id, as the server resolved it.

A page behind an authenticating proxy cannot know which user the proxy will name (the
proxy replaces X-User-ID on every request, WebSocket upgrades included), so it asks here
over HTTP, through the proxy, and names that id in its `connection_init` payload too.
The id was already resolved by the request's identity (llamaql.auth) when the context
was built; there is no use case beyond reporting it, so no service sits in between.
"""

from __future__ import annotations

from strawberry.types import Info

from llamaql.api.context import Context
from llamaql.api.viewer import Viewer


async def viewer(info: Info[Context, None]) -> Viewer:
    """The request's user; UNAUTHENTICATED like every other field when there is none."""
    return Viewer.for_user(info.context.require_user())
