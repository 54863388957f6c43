"""A TCP relay in front of a database, to make it unreachable on demand.

`TcpProxy` listens on a loopback port and relays every connection to the upstream
address. `refuse()` stops listening and cuts the open connections (a database that is
down: connections are refused or reset); `blackhole()` keeps accepting and keeps the open
connections, but relays nothing either way (a network partition: requests hang until
someone times out); `relay()` ends either. Bytes held during a blackhole are delivered
when it ends, as TCP would once a partition heals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Literal

log = logging.getLogger(__name__)

Mode = Literal["relay", "refuse", "blackhole"]
CHUNK = 65536


class TcpProxy:
    """`async with TcpProxy(host, port) as proxy:` relays 127.0.0.1:`proxy.port` to
    `host:port` until `refuse()` or `blackhole()`."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.port = 0
        self.mode: Mode = "relay"
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    async def __aenter__(self) -> TcpProxy:
        await self._listen()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accepted, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def refuse(self) -> None:
        """Stop listening (new connections are refused) and reset every open one."""
        self.mode = "refuse"
        self._flowing.set()
        await self._stop_listening()
        for writer in list(self._writers):
            writer.transport.abort()

    def blackhole(self) -> None:
        """Accept connections but relay nothing, on new and open connections alike."""
        self.mode = "blackhole"
        self._flowing.clear()

    async def relay(self) -> None:
        """Relay again: listen if refusing, deliver what a blackhole held."""
        if self._server is None:
            await self._listen()
        self.mode = "relay"
        self._flowing.set()

    async def close(self) -> None:
        """Stop listening and cut every connection; their tasks end by themselves (a
        cancelled one would be logged by asyncio's server as an error)."""
        self._closing = True
        self._flowing.set()
        await self._stop_listening()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)

    async def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            await self._flowing.wait()  # a blackhole: the client's handshake goes unanswered
            if self._closing or self.mode == "refuse":
                return
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
            self._writers.add(upstream_writer)
            await asyncio.gather(
                self._pump(reader, upstream_writer), self._pump(upstream_reader, writer)
            )
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for each in (writer, upstream_writer):
                if each is not None:
                    self._writers.discard(each)
                    each.transport.abort()
            self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()
