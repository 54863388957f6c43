"""The terminal client's commands against a real server and the real model, driven
through ChatSession with scripted lines; what it prints is checked against what the
server stored."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from tests.integration.chat.live import LONG_OPTIONS, LONG_TEXT, Http, Server
from tests.integration.client.conftest import TerminalFactory

pytestmark = [pytest.mark.model, pytest.mark.slow]

SHORT = {"temperature": 0.0, "maxTokens": 8}


async def test_a_message_opens_a_conversation_and_streams_the_stored_reply(
    terminal: TerminalFactory, client_server: Server
) -> None:
    term = terminal(options=SHORT)
    printed = await term.run("What is the capital of France?")
    cid = term.session.conversation_id
    assert cid is not None
    user_message, reply = await Http(client_server, term.user).messages(cid)
    assert user_message["text"] == "What is the capital of France?"
    assert reply["status"] == "COMPLETE"
    assert reply["text"].strip()
    # The streamed pieces add up to the stored reply, printed once.
    assert printed.count(reply["text"]) == 1


async def test_list_new_switch_rename_delete(
    terminal: TerminalFactory, client_server: Server
) -> None:
    term = terminal(options=SHORT)
    await term.run("/new Recipes", "Say hi.", "/new Travel")
    listing = await term.run("/list")
    lines = listing.splitlines()
    assert lines[0].startswith("*  1. Travel"), listing  # newest first, current marked
    assert lines[1].startswith("   2. Recipes"), listing

    shown = await term.run("/switch 2")
    assert "[conversation: Recipes, 2 messages]" in shown
    assert "you> Say hi." in shown
    recipes = term.session.conversation_id

    assert "[renamed: Soups]" in await term.run("/rename Soups")
    http = Http(client_server, term.user)
    assert recipes is not None
    titles = await http.data("query { conversations { edges { node { title } } } }")
    assert [e["node"]["title"] for e in titles["conversations"]["edges"]] == ["Soups", "Travel"]

    # Renaming was the latest activity: Soups lists first now.
    await term.run("/list", "/delete 1")
    assert term.session.conversation_id is None  # the open one was deleted
    assert (await http.data("query($id: ID!) { conversation(id: $id) { id } }", id=recipes)) == {
        "conversation": None
    }
    assert "no conversation open" in await term.run("/rename Anything")


async def test_another_users_conversation_is_not_found(terminal: TerminalFactory) -> None:
    owner, stranger = terminal(options=SHORT), terminal(options=SHORT)
    await owner.run("/new Private")
    private = owner.session.conversation_id
    printed = await stranger.run(f"/switch {private}", f"/delete {private}")
    assert printed.count("error NOT_FOUND: ") == 2, printed
    assert stranger.session.conversation_id is None
    assert "Private" in await owner.run("/list")


async def test_ctrl_c_cancels_the_reply_and_keeps_its_text(
    terminal: TerminalFactory, client_server: Server
) -> None:
    term = terminal(options=LONG_OPTIONS)
    await term.run("/new Counting")
    start = len(term.output.getvalue())
    sending = asyncio.create_task(term.run(LONG_TEXT))
    await term.streaming(start)
    assert term.session.interrupt()
    printed = await sending
    assert printed.rstrip().endswith("[cancelled]"), printed
    assert term.session.interrupt() is False  # nothing streams any more

    cid = term.session.conversation_id
    assert cid is not None
    reply = (await Http(client_server, term.user).messages(cid))[-1]
    assert reply["status"] == "CANCELLED"
    assert reply["text"]
    assert reply["text"] in printed
    # The conversation is free again.
    term.session.options = SHORT
    assert "error" not in await term.run("Say hi.")


async def test_a_waiting_reply_shows_its_place_in_line(terminal: TerminalFactory) -> None:
    first, second = terminal(options=LONG_OPTIONS), terminal(options=SHORT)
    await first.run("/new Long")
    await second.run("/new Short")
    start = len(first.output.getvalue())
    long_reply = asyncio.create_task(first.run(LONG_TEXT))
    await first.streaming(start)
    short_reply = asyncio.create_task(second.run("Say hi."))
    # One reply decodes at a time on this server: the second waits, first in line.
    await second.printed("[waiting: number 1 in line for the model]")
    first.session.interrupt()
    await long_reply
    assert "error" not in await short_reply


async def test_refusals_are_shown_by_code(terminal: TerminalFactory) -> None:
    term = terminal(user=str(uuid.uuid4()), options={"temperature": 5.0})
    printed = await term.run("Hello")
    assert "error BAD_USER_INPUT: " in printed, printed
    assert "temperature" in printed
    # Refused before anything was written: the new conversation stays empty.
    assert "0 messages" in await term.run(f"/switch {term.session.conversation_id}")

    busy = terminal(user=term.user, options=LONG_OPTIONS)
    await busy.run(f"/switch {term.session.conversation_id}")
    start = len(busy.output.getvalue())
    streaming = asyncio.create_task(busy.run(LONG_TEXT))
    await busy.streaming(start)
    term.session.options = None
    assert "error CONVERSATION_BUSY: " in await term.run("Me too")
    busy.session.interrupt()
    await streaming


async def test_hostile_text_is_printed_inert(terminal: TerminalFactory) -> None:
    term = terminal(options=SHORT)
    await term.run("/new \x1b]0;pwned\x07Evil\x1b[2J")
    printed = await term.run("/list", "Say \x1b[31mhi\x9b.", "/history")
    for control in ("\x1b", "\x07", "\x9b"):
        assert control not in printed
    assert "]0;pwnedEvil[2J" in printed
    assert "you> Say [31mhi." in printed


async def test_usage_mistakes_say_how(terminal: TerminalFactory) -> None:
    term = terminal()
    printed = await term.run("/switch 3", "/switch nope", "/branch sideways", "/frobnicate")
    assert "no conversation 3 in the last /list" in printed
    assert "usage: /switch N|id" in printed
    assert "usage: /branch prev|next" in printed
    assert "unknown command /frobnicate" in printed
    assert await term.session.handle("/quit") is False


async def test_context_shows_what_sending_would_use(
    terminal: TerminalFactory, client_server: Server
) -> None:
    term = terminal(options=SHORT)
    assert "no conversation open" in await term.run("/context hello")
    await term.run("What is the capital of France?")
    cid = term.session.conversation_id
    usage = (
        await Http(client_server, term.user).data(
            """query($id: ID!, $text: String) { contextUsage(conversationId: $id, text: $text)
            { contextSize promptTokens replyTokens droppedMessages fits } }""",
            id=cid,
            text="And Spain?",
        )
    )["contextUsage"]
    shown = await term.run("/context And Spain?")
    assert (
        f"[context: {usage['promptTokens']} prompt + {usage['replyTokens']} reply tokens "
        f"of {usage['contextSize']}"
    ) in shown
    assert usage["fits"]
    assert "does not fit" not in shown
    assert "does not fit" in await term.run("/context " + "word " * 1500)
    # Nothing was sent: the branch still holds the one exchange.
    assert cid is not None
    assert len(await Http(client_server, term.user).messages(cid)) == 2
