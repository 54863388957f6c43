"""The remote engine's local bound, against a real HTTP server that streams until its
client leaves: LLAMAQL_PARALLEL replies in flight, LLAMAQL_QUEUE_SIZE waiting with their
positions, QUEUE_FULL beyond, and every cancel closing its upstream stream.

(llama-cpp-python's server cannot show this: it answers even token counts only between
replies, so a second send waits there before it could queue here.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.integration.chat.live import Http, Server, connect, new_user, stopped_cleanly
from tests.integration.remote.conftest import remote_server
from tests.integration.remote.upstream import ScriptedServer


async def _first_text(ws: Any, op: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = await ws.until(op, "TokenDelta")
    assert events[-1]["__typename"] == "TokenDelta", events
    return events


async def _disconnects_reach(engine: ScriptedServer, count: int) -> None:
    for _ in range(300):
        if engine.disconnects >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{engine.disconnects} upstream streams closed, expected {count}")


async def test_a_local_bound_keeps_queue_positions_and_queue_full(
    tmp_path: Path, endless: ScriptedServer
) -> None:
    # One reply streams (LLAMAQL_PARALLEL=1), one waits (LLAMAQL_QUEUE_SIZE=1).
    server: Server = remote_server(tmp_path, endless.api_url)
    try:
        users = [new_user() for _ in range(3)]
        https = [Http(server, user) for user in users]
        cids = [await http.create_conversation() for http in https]
        async with (
            connect(server, users[0]) as first,
            connect(server, users[1]) as second,
            connect(server, users[2]) as third,
        ):
            op_first = await first.send_message(cids[0], "Go on.")
            streaming = await _first_text(first, op_first)
            op_second = await second.send_message(cids[1], "Go on.", cancel_on_close=True)
            queued = await second.event(op_second)
            assert queued["__typename"] == "MessageQueued"
            assert queued["position"] == 1
            refused = await third.stream(await third.send_message(cids[2], "Hello?"))
            assert [e["__typename"] for e in refused] == ["MessageFailed"]
            assert refused[0]["code"] == "QUEUE_FULL"
            assert refused[0]["retryable"] is True
            assert await https[2].messages(cids[2]) == []

            # The first reply's cancel closes its stream; the waiting one starts.
            await https[0].cancel(streaming[0]["assistantMessageId"])
            ended = (await first.stream(op_first))[-1]
            assert ended["message"]["status"] == "CANCELLED"
            assert ended["message"]["text"].startswith("and on and on")
            await _disconnects_reach(endless, 1)
            started = await second.until(op_second, "TokenDelta")
            assert started[-1]["__typename"] == "TokenDelta"
            assert any(e.get("position") == 0 for e in started)

            # A client leaving (closing its socket, cancelOnClose) closes the upstream
            # stream too.
            await second.close()
            await _disconnects_reach(endless, 2)
        for _ in range(300):  # the reply is saved once its stream has ended
            stored = await https[1].messages(cids[1])
            if stored[-1]["status"] != "GENERATING":
                break
            await asyncio.sleep(0.05)
        assert stored[-1]["status"] == "CANCELLED"
        assert stored[-1]["text"].startswith("and on")
    finally:
        stopped_cleanly(server)
