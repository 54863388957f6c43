"""The terminal client's reply on fakes: Ctrl-C cancels (even before the reply's id is
known), a dropped connection is opened again and the reply followed from the characters
printed, a refused token is renewed first, the backoff, and the token command."""

from __future__ import annotations

import io
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llamaql.client.api import ApiError
from llamaql.client.console import Console
from llamaql.client.operations import CANCEL, REPLY_STREAM, SEND_MESSAGE
from llamaql.client.reply import LiveReply
from llamaql.client.resume import Backoff, TokenCommandError, TokenSource

REPLY = "r-1"


def queued() -> dict[str, Any]:
    return {"__typename": "MessageQueued", "assistantMessageId": REPLY, "position": 0}


def delta(text: str) -> dict[str, Any]:
    return {"__typename": "TokenDelta", "messageId": REPLY, "text": text}


def completed(text: str, status: str = "COMPLETE") -> dict[str, Any]:
    message = {"id": REPLY, "status": status, "text": text, "finishReason": "stop"}
    return {"__typename": "MessageCompleted", "message": message}


class FakeStream:
    """Gives its events, then raises `then` (a dropped connection) if given."""

    def __init__(self, events: list[dict[str, Any]], then: ApiError | None = None) -> None:
        self._events = events
        self._then = then
        self.closed = False
        self.completed = False

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        for event in self._events:
            if self.completed:  # as a real stream: an unsubscribe ends it
                return
            yield event
        if self._then is not None:
            raise self._then

    async def complete(self) -> None:
        self.completed = True

    async def close(self) -> None:
        self.closed = True


class FakeServer:
    """Opens the streams it was given in order, recording each opening; runs mutations."""

    def __init__(self, *streams: FakeStream | ApiError, renews: bool = False) -> None:
        self._streams = list(streams)
        self.opened: list[tuple[str, dict[str, Any]]] = []
        self.executed: list[tuple[str, dict[str, Any]]] = []
        self.renewed = 0
        self._renews = renews

    async def open(self, document: str, field: str, variables: dict[str, Any]) -> FakeStream:
        self.opened.append((field, variables))
        next_one = self._streams.pop(0)
        if isinstance(next_one, ApiError):
            raise next_one
        return next_one

    async def execute(self, document: str, **variables: Any) -> dict[str, Any]:
        self.executed.append((document, variables))
        return {}

    async def renew_identity(self) -> bool:
        self.renewed += 1
        return self._renews


def reply_of(server: FakeServer, out: io.StringIO, **kwargs: Any) -> LiveReply:
    # No waiting between tries in these tests: the backoff's delays are its own test's.
    backoff = Backoff(first=0.0, most=0.0, tries=3)
    return LiveReply(
        api=server, console=Console(out), open_stream=server.open, backoff=backoff, **kwargs
    )


SEND = (SEND_MESSAGE, "sendMessage", {"conversationId": "c", "text": "hi"})
LOST = ApiError("UNREACHABLE", "the connection closed (1006)")


async def test_a_dropped_connection_follows_the_reply_from_what_was_printed() -> None:
    server = FakeServer(
        FakeStream([queued(), delta("Héllo 🇫🇷")], then=LOST),
        LOST,  # the first try to reconnect fails too
        FakeStream([delta(" world"), completed("Héllo 🇫🇷 world")]),
    )
    out = io.StringIO()
    stored = await reply_of(server, out).run(*SEND)
    assert stored is not None
    assert stored["status"] == "COMPLETE"
    # Counted in code points, as the server counts `after` (the flag is two).
    assert server.opened[1:] == [("replyStream", {"messageId": REPLY, "after": 8})] * 2
    assert out.getvalue() == "Héllo 🇫🇷\n[connection lost: reconnecting…]\n world\n"


async def test_a_reply_that_ended_meanwhile_prints_its_rest_once() -> None:
    server = FakeServer(
        FakeStream([queued(), delta("One, two")], then=LOST),
        FakeStream([completed("One, two, three.")]),
    )
    out = io.StringIO()
    await reply_of(server, out).run(*SEND)
    assert out.getvalue().endswith(", three.\n")
    assert out.getvalue().count("One, two") == 1


async def test_an_expired_token_is_renewed_before_reconnecting() -> None:
    expired = ApiError("UNAUTHENTICATED", "the token expired: reconnect with a fresh one")
    server = FakeServer(
        FakeStream([queued(), delta("abc")], then=expired),
        FakeStream([completed("abcdef")]),
        renews=True,
    )
    out = io.StringIO()
    assert await reply_of(server, out).run(*SEND) is not None
    assert server.renewed == 1
    assert server.opened[1] == ("replyStream", {"messageId": REPLY, "after": 3})


async def test_without_a_way_to_renew_the_refusal_is_the_answer() -> None:
    expired = ApiError("UNAUTHENTICATED", "the token expired")
    server = FakeServer(FakeStream([queued()], then=expired))
    with pytest.raises(ApiError) as raised:
        await reply_of(server, io.StringIO()).run(*SEND)
    assert raised.value is expired
    assert len(server.opened) == 1


async def test_giving_up_says_the_reply_goes_on() -> None:
    server = FakeServer(FakeStream([queued()], then=LOST), LOST, LOST, LOST)
    with pytest.raises(ApiError, match="goes on on the server"):
        await reply_of(server, io.StringIO()).run(*SEND)
    assert len(server.opened) == 4  # the stream, then three tries


async def test_a_connection_lost_before_the_reply_has_an_id_is_an_error() -> None:
    server = FakeServer(FakeStream([], then=LOST))
    with pytest.raises(ApiError, match="1006"):
        await reply_of(server, io.StringIO()).run(*SEND)


async def test_ctrl_c_before_the_id_cancels_once_it_comes() -> None:
    stream = FakeStream([queued(), completed("", status="CANCELLED")])
    server = FakeServer(stream)
    out = io.StringIO()
    live = reply_of(server, out)
    live.interrupt()  # before anything arrived
    stored = await live.run(*SEND)
    assert stored is not None
    assert server.executed == [(CANCEL, {"id": REPLY})]
    assert "[cancelled]" in out.getvalue()
    assert not stream.completed  # the cancel, not an unsubscribe, ended it


async def test_ctrl_c_twice_stops_following() -> None:
    stream = FakeStream([queued(), delta("a")])
    server = FakeServer(stream)
    live = reply_of(server, io.StringIO(), reply_id=REPLY, shown="")
    live.interrupt()
    live.interrupt()  # both while it was opening
    assert await live.run(REPLY_STREAM, "replyStream", {"messageId": REPLY, "after": 0}) is None
    assert stream.completed
    assert server.executed == [(CANCEL, {"id": REPLY})]


def test_the_backoff_doubles_to_a_ceiling_then_gives_up() -> None:
    backoff = Backoff(first=0.5, most=4.0, tries=6)
    assert [backoff.next_delay() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, None]
    backoff.reset()
    assert backoff.next_delay() == 0.5


async def test_the_token_command_gives_a_fresh_token() -> None:
    python = sys.executable
    assert await TokenSource(f"{python} -c \"print('Bearer abc.def')\"").fresh() == "abc.def"
    failing = f"{python} -c \"import sys; sys.stderr.write('no login'); sys.exit(3)\""
    with pytest.raises(TokenCommandError, match=r"exit status 3\): no login"):
        TokenSource(failing).token()
    with pytest.raises(TokenCommandError, match="no token"):
        TokenSource(f'{python} -c "print()"').token()
