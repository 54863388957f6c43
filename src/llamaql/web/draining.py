"""The server `llamaql serve` runs: a graceful stop that ends live replies before the
sockets close, and a settled heap once started (web/heap.py).

uvicorn's shutdown first closes every connection (WebSockets with 1012) and only then
runs the app's lifespan shutdown, which cancels and saves the replies: a client
listening to a reply never got its terminal event. DrainingServer ends the replies
(each stream gets MessageCompleted with its CANCELLED reply) before uvicorn closes them.
"""

from __future__ import annotations

import logging
import socket

import uvicorn
from starlette.applications import Starlette

from llamaql.container import Runtime
from llamaql.web.heap import settle_heap

logger = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 10.0


class DrainingServer(uvicorn.Server):
    """uvicorn.Server whose shutdown first drains the app's live replies."""

    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self._app = app

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:  # the lifespan's start-up (model, database) is behind us
            settle_heap()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        container = getattr(self._app.state, "container", None)
        chat = container.resolve(Runtime).chat if container is not None else None
        if chat is not None:
            logger.info("ending live replies before closing connections")
            await chat.drain(DRAIN_TIMEOUT_S)
        await super().shutdown(sockets)
