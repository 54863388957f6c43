"""A server stopped mid-reply loses nothing the user sent. Killed: after a restart the
user's message is intact, the reply FAILED/interrupted, and the conversation works on.
Stopped gracefully (SIGTERM): the partial reply is saved as CANCELLED."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from tests.integration.chat.live import (
    DEFAULT_MODEL_PATH,
    LONG_OPTIONS,
    LONG_TEXT,
    Http,
    Server,
    connect,
    new_user,
    streamed_text,
)

pytestmark = [
    pytest.mark.model,
    pytest.mark.slow,
    pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason="default model not fetched"),
]


async def test_kill_mid_stream_then_restart(tmp_path: Path) -> None:
    database, log = tmp_path / "kill.db", tmp_path / "server.log"
    user = new_user()
    server = Server(database=database, log=log, env={"LLAMAQL_CHECKPOINT_SECONDS": "0.5"}).start()
    try:
        http = Http(server, user)
        cid = await http.create_conversation()
        async with connect(server, user) as ws:
            op = await ws.send_message(cid, LONG_TEXT, LONG_OPTIONS)
            events = await ws.until(op, "TokenDelta")
            streaming_since = time.monotonic()
            while time.monotonic() - streaming_since < 2.0:  # a few checkpoints' worth
                events.append(await ws.event(op))
            assert streamed_text(events)
            assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    finally:
        if server.process is not None:
            server.stop(signal.SIGKILL)

    restarted = Server(database=database, log=log).start()
    try:
        http = Http(restarted, user)
        user_message, reply = await http.messages(cid)
        assert (user_message["role"], user_message["status"], user_message["text"]) == (
            "USER",
            "COMPLETE",
            LONG_TEXT,
        )
        assert (reply["role"], reply["status"], reply["finishReason"]) == (
            "ASSISTANT",
            "FAILED",
            "interrupted",
        )
        # The text checkpointed while it streamed survived the kill.
        assert reply["text"]
        assert streamed_text(events).startswith(reply["text"])
        assert "marked 1 interrupted replies as FAILED" in restarted.tail(200)

        async with connect(restarted, user) as ws:
            done = (await ws.stream(await ws.send_message(cid, "Hi again.", {"maxTokens": 8})))[-1]
        assert done["__typename"] == "MessageCompleted", done
        assert done["message"]["status"] == "COMPLETE"
    finally:
        restarted.stop()


async def test_graceful_stop_mid_stream_keeps_the_partial_reply(tmp_path: Path) -> None:
    database, log = tmp_path / "stop.db", tmp_path / "server.log"
    user = new_user()
    server = Server(database=database, log=log).start()
    try:
        http = Http(server, user)
        cid = await http.create_conversation()
        async with connect(server, user) as ws:
            op = await ws.send_message(cid, LONG_TEXT, LONG_OPTIONS)
            events = await ws.until(op, "TokenDelta")
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            # The listening client gets its terminal event before the socket closes.
            events += await ws.stream(op)
        assert server.stop() in (0, -signal.SIGTERM)
    finally:
        if server.process is not None:
            server.stop(signal.SIGKILL)

    restarted = Server(database=database, log=log).start()
    try:
        user_message, reply = await Http(restarted, user).messages(cid)
        assert (user_message["status"], user_message["text"]) == ("COMPLETE", LONG_TEXT)
        assert (reply["status"], reply["finishReason"]) == ("CANCELLED", "cancelled")
        assert events[-1]["__typename"] == "MessageCompleted"
        assert events[-1]["message"]["status"] == "CANCELLED"
        assert reply["text"] == events[-1]["message"]["text"] == streamed_text(events)
    finally:
        restarted.stop()
