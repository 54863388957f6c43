"""/regen, /edit and /branch against a real server: a regenerated reply or an edited
message becomes a sibling of the old one and the current branch; /branch flips between
them through selectBranch."""

from __future__ import annotations

import pytest
from tests.integration.chat.live import Http, Server
from tests.integration.client.conftest import TerminalFactory

pytestmark = [pytest.mark.model, pytest.mark.slow]


async def _branch_ids(http: Http, conversation_id: str) -> list[str]:
    return [message["id"] for message in await http.messages(conversation_id)]


async def test_regen_then_branch_prev_and_next(
    terminal: TerminalFactory, client_server: Server
) -> None:
    term = terminal(options={"temperature": 1.0, "seed": 1, "maxTokens": 8})
    http = Http(client_server, term.user)
    assert "no conversation open" in await term.run("/regen")
    await term.run("Name a colour.")
    cid = term.session.conversation_id
    assert cid is not None
    question, first = await _branch_ids(http, cid)

    term.session.options = {"temperature": 1.0, "seed": 2, "maxTokens": 8}
    regenerated = await term.run("/regen")
    assert "error" not in regenerated, regenerated
    branch = await _branch_ids(http, cid)
    assert branch[0] == question
    assert len(branch) == 2
    second = branch[1]
    assert second != first
    (stored,) = [m for m in await http.messages(cid) if m["id"] == second]
    assert stored["text"] in regenerated

    shown = await term.run("/branch prev")
    assert "[version 1 of 2]" in shown
    assert await _branch_ids(http, cid) == [question, first]
    assert "no prev version: this is version 1 of 2" in await term.run("/branch prev")
    assert "[version 2 of 2]" in await term.run("/branch next")
    assert await _branch_ids(http, cid) == [question, second]


async def test_edit_then_branch_back_to_the_first_question(
    terminal: TerminalFactory, client_server: Server
) -> None:
    term = terminal(options={"temperature": 0.0, "maxTokens": 8})
    http = Http(client_server, term.user)
    await term.run("What is the capital of France?")
    cid = term.session.conversation_id
    assert cid is not None
    original = await _branch_ids(http, cid)

    printed = await term.run("/edit What is the capital of Spain?")
    assert "error" not in printed, printed
    question, reply = await http.messages(cid)
    assert question["text"] == "What is the capital of Spain?"
    assert reply["status"] == "COMPLETE"
    assert reply["text"] in printed

    shown = await term.run("/branch prev")
    assert "[version 1 of 2]" in shown
    assert "you> What is the capital of France?" in shown
    assert await _branch_ids(http, cid) == original


async def test_regen_and_edit_need_something_to_replace(terminal: TerminalFactory) -> None:
    term = terminal()
    await term.run("/new Empty")
    assert "no reply to regenerate" in await term.run("/regen")
    assert "no message of yours to edit" in await term.run("/edit Hello")
    assert "usage: /edit text" in await term.run("/edit")
    assert "no other versions in this conversation yet" in await term.run("/branch next")
