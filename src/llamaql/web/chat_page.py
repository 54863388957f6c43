"""The bundled chat page: GET / serves static/chat.html, /static/ its script and styles.

The page is plain HTML, CSS and JavaScript with no build step and no external URLs; it
talks to /graphql like any other client (HTTP for queries and mutations, WebSocket with
graphql-transport-ws for sendMessage).
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
PAGE = STATIC_DIR / "chat.html"
# Everything the page needs comes from this server: no inline scripts, no other origins.
# connect-src 'self' covers fetch("graphql") and the same-origin ws:/wss: socket.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


async def chat_page(request: Request) -> Response:
    """The chat page itself."""
    return FileResponse(
        PAGE,
        media_type="text/html",
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
        },
    )


def chat_page_routes() -> list[BaseRoute]:
    """GET / for the page and /static/ for its assets."""
    return [
        Route("/", chat_page, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
