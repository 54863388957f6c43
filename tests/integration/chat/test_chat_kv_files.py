"""KV files through a real `llamaql serve`: stopped and started again, a conversation's
next turn evaluates only its new tokens, as if the server had never stopped; deleting
the conversation deletes its file."""

from __future__ import annotations

import json
import signal
import struct
from pathlib import Path
from typing import Any

import pytest
from tests.eventually import eventually
from tests.integration.chat.live import Http, Server, connect, new_user, require_model

pytestmark = [pytest.mark.model, pytest.mark.slow]

GREEDY = {"temperature": 0.0, "maxTokens": 12}
ENV = {"LLAMAQL_AUTO_TITLE": "false", "LLAMAQL_PARALLEL": "2", "LLAMAQL_CONTEXT_SIZE": "1024"}
USAGE = """
query($id: ID!) { conversation(id: $id) { messages(first: 10) { edges { node {
  role usage { promptTokens cachedPromptTokens }
} } } } }
"""


def kv_owners(kv_dir: Path) -> set[tuple[str, str]]:
    """(user, conversation) of each KV file, from its header."""
    owners = set()
    for path in kv_dir.glob("*.kv"):
        with path.open("rb") as file:
            _magic, _version, size = struct.unpack("<4sII", file.read(12))
            header = json.loads(file.read(size))
        owners.add((header["user"], header["conversation"]))
    return owners


async def turn(http: Http, server: Server, cid: str, text: str) -> dict[str, Any]:
    """Send `text`; the reply's usage as stored."""
    async with connect(server, http.user) as ws:
        events = await ws.stream(await ws.send_message(cid, text, GREEDY))
    assert events[-1]["__typename"] == "MessageCompleted", events[-1]
    data = await http.data(USAGE, id=cid)
    usage: dict[str, Any] = data["conversation"]["messages"]["edges"][-1]["node"]["usage"]
    return usage


async def until_owners(kv_dir: Path, expected: set[tuple[str, str]]) -> None:
    """Wait (bounded) until the KV files are those of `expected`: deletes are written on
    the engine's writer thread."""
    await eventually(
        lambda: kv_owners(kv_dir), 30, holds=lambda owners: owners == expected, what="KV owners"
    )


async def test_a_turn_after_a_restart_reuses_the_kv_and_delete_removes_it(
    tmp_path: Path,
) -> None:
    require_model()
    database, log, kv_dir = tmp_path / "kv.db", tmp_path / "server.log", tmp_path / ".kv"
    user = new_user()
    server = Server(database=database, log=log, env=ENV).start()
    try:
        http = Http(server, user)
        restarted_cid = await http.create_conversation()
        unbroken_cid = await http.create_conversation()
        for cid in (restarted_cid, unbroken_cid):
            await turn(http, server, cid, "Name three colours of the rainbow.")
        # The same second turn without a restart: the KV still in its sequence.
        unbroken = await turn(http, server, unbroken_cid, "And three more?")
    finally:
        assert server.stop() in (0, -signal.SIGTERM), server.tail()
    assert kv_owners(kv_dir) == {(user, restarted_cid), (user, unbroken_cid)}

    server = Server(database=database, log=log, env=ENV).start()  # same folder: same .kv
    try:
        http = Http(server, user)
        restarted = await turn(http, server, restarted_cid, "And three more?")
        assert restarted["cachedPromptTokens"] > 0
        assert restarted == unbroken  # only the new tokens evaluated, as without a restart

        delete = "mutation($id: ID!) { deleteConversation(id: $id) }"
        await http.data(delete, id=restarted_cid)
        await until_owners(kv_dir, {(user, unbroken_cid)})
        await http.data(delete, id=unbroken_cid)
        await until_owners(kv_dir, set())
    finally:
        assert server.stop() in (0, -signal.SIGTERM), server.tail()
    assert kv_owners(kv_dir) == set()  # nothing of either was written as it stopped
