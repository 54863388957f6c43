"""A connection that has not sent a request's complete headers in time is closed.

uvicorn has no such timer: `timeout_keep_alive` only closes a connection left idle
between requests, and neither h11 nor httptools times a request's head, so a client
sending its headers a byte every few seconds holds a socket and its buffers for ever
(200 such connections stayed open for 80 s and more). The timer lives in uvicorn's HTTP
protocol, the asyncio.Protocol of each connection: the only layer that sees a connection
before a request exists (ASGI middleware sees requests whose headers are complete).

`header_timeout_protocol` subclasses the protocol uvicorn's `http="auto"` would pick
(HttpToolsProtocol when httptools is installed, as uvicorn[standard] does; H11Protocol
otherwise), and both are covered. The timer is armed when the connection is made and
when the first bytes of a later request arrive on a kept-alive connection, and cancelled
once the headers are complete: a WebSocket upgrade completes its headers before the
socket changes protocol, so WebSockets are never timed. When it fires, the client gets
`408 Request Timeout` and the connection is closed; a pipelined request's head waiting
behind a response still being sent gets a new period instead.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from typing import Literal, cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)

DEFAULT_HEADER_TIMEOUT_S = 10.0
_TIMEOUT_TEXT = b"Request headers took too long.\n"
REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TIMEOUT_TEXT), _TIMEOUT_TEXT)
)
HttpImplementation = Literal["auto", "h11", "httptools"]


class HeaderTimer:
    """One connection's deadline for a request's headers; `expired` is called when it
    passes, and `arm` does nothing while a deadline is set."""

    def __init__(self, protocol: _TimedProtocol, seconds: float) -> None:
        self._protocol = protocol
        self._seconds = seconds
        self._handle: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        if self._handle is None:
            self._handle = self._protocol.loop.call_later(self._seconds, self._fire)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        self._protocol.header_timeout_expired()


class _TimedProtocol:
    """What the two protocol subclasses share: the timer and what it does on expiry."""

    header_timeout_s = DEFAULT_HEADER_TIMEOUT_S
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    client: tuple[str, int] | None
    header_timer: HeaderTimer

    def _responding(self) -> bool:
        cycle = getattr(self, "cycle", None)
        return cycle is not None and not cycle.response_complete

    def start_header_timer(self) -> None:
        self.header_timer = HeaderTimer(self, self.header_timeout_s)
        self.header_timer.arm()

    def header_timeout_expired(self) -> None:
        if self.transport.is_closing():
            return
        if self._responding():  # a pipelined head behind a response: wait for it
            self.header_timer.arm()
            return
        logger.debug("closing %s: no complete request headers in time", self.client)
        self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()


class H11HeaderTimeout(_TimedProtocol, H11Protocol):
    """H11Protocol with the header timer: h11 has no header callback, so the
    connection's state tells (`their_state` leaves IDLE once a request's head is in)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.start_header_timer()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self.header_timer.arm()  # a request's first bytes (a no-op once armed)
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self.header_timer.cancel()

    def connection_lost(self, exc: Exception | None) -> None:
        self.header_timer.cancel()
        super().connection_lost(exc)


def _httptools_class() -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HttpToolsHeaderTimeout(_TimedProtocol, HttpToolsProtocol):
        """HttpToolsProtocol with the header timer, on the parser's callbacks."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.start_header_timer()

        def on_message_begin(self) -> None:
            self.header_timer.arm()  # a request's first bytes (a no-op once armed)
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self.header_timer.cancel()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self.header_timer.cancel()
            super().connection_lost(exc)

    return HttpToolsHeaderTimeout


def header_timeout_protocol(
    seconds: float, http: HttpImplementation = "auto"
) -> type[asyncio.Protocol]:
    """The HTTP protocol class for uvicorn.Config(http=...): `http`'s implementation,
    "auto" choosing as uvicorn does, closing connections after `seconds` without
    complete request headers."""
    if http == "auto":
        http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    base = _httptools_class() if http == "httptools" else H11HeaderTimeout
    return cast(
        "type[asyncio.Protocol]", type(base.__name__, (base,), {"header_timeout_s": seconds})
    )
