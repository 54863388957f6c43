"""`llamaql chat` and replies that belong to the server, against a real server and the
real model: Ctrl-C stops a reply through cancelGeneration, /switch follows a reply sent
elsewhere, a connection cut mid-reply is opened again and the reply resumed from what was
printed, and a token that expires mid-reply is renewed with --token-command. Each time,
what the terminal printed is the stored text, once."""

from __future__ import annotations

import asyncio
import io
import re
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from tests.integration.chat.live import LONG_OPTIONS, LONG_TEXT, Http, Server, served
from tests.integration.client.conftest import Terminal, TerminalFactory
from tests.integration.client.cut_proxy import CuttableProxy

from llamaql.auth.bearer import LEEWAY_S
from llamaql.client.api import GraphQLHttp, Identity
from llamaql.client.console import Console
from llamaql.client.resume import TokenSource
from llamaql.client.session import ChatSession

pytestmark = [pytest.mark.model, pytest.mark.slow]

SECRET = "client-live-secret-of-at-least-32-bytes"
RECONNECTING = re.compile(r"\n?\[connection lost: reconnecting…\]\n")
REPLY_QUERY = """query($id: ID!) { conversation(id: $id) {
  messages(first: 100) { edges { node { id role text status } } } } }"""


def without_notices(printed: str) -> str:
    """What was printed, without the reconnection notices between a reply's pieces: a
    reply followed with no gap and no repeat is then in it as stored, once."""
    return RECONNECTING.sub("", printed)


async def test_ctrl_c_stops_the_reply_through_cancel_generation(
    terminal: TerminalFactory, client_server: Server
) -> None:
    term = terminal(options=LONG_OPTIONS)
    await term.run("/new Stop me")
    start = len(term.output.getvalue())
    sending = asyncio.create_task(term.run(LONG_TEXT))
    await term.streaming(start)
    assert term.session.interrupt()
    printed = await sending
    cid = term.session.conversation_id
    assert cid is not None
    reply = (await Http(client_server, term.user).messages(cid))[-1]
    # Closing the stream would not stop it (the reply belongs to the server): CANCELLED
    # says the client asked the server to stop it, and the text so far is kept.
    assert reply["status"] == "CANCELLED"
    assert reply["text"]
    assert printed.count(reply["text"]) == 1


async def test_switch_follows_a_reply_sent_elsewhere(
    terminal: TerminalFactory, client_server: Server
) -> None:
    sender = terminal(options=LONG_OPTIONS)
    await sender.run("/new Shared")
    cid = sender.session.conversation_id
    start = len(sender.output.getvalue())
    sending = asyncio.create_task(sender.run(LONG_TEXT))
    await sender.streaming(start)

    watcher = terminal(user=sender.user)
    shown = await watcher.run(f"/switch {cid}")
    await sending
    reply = (await Http(client_server, sender.user).messages(str(cid)))[-1]
    assert reply["status"] == "COMPLETE"
    # The text stored when it switched, then the rest: the whole reply, printed once.
    assert f"you> {LONG_TEXT}" in shown
    assert without_notices(shown).count(reply["text"]) == 1
    assert watcher.session.interrupt() is False  # it has ended: nothing streams


async def test_a_cut_connection_resumes_the_reply_where_it_stopped(
    client_server: Server,
) -> None:
    user = str(uuid.uuid4())
    async with (
        CuttableProxy(client_server.port) as proxy,
        GraphQLHttp(client_server.http_url, Identity.of(user, None)) as api,
    ):
        output = io.StringIO()
        session = ChatSession(
            api=api,
            ws_url=f"ws://127.0.0.1:{proxy.port}/graphql",
            console=Console(output),
            options=LONG_OPTIONS,
        )
        term = Terminal(session=session, output=output, user=user)
        await term.run("/new Lid closed")
        start = len(output.getvalue())
        sending = asyncio.create_task(term.run(LONG_TEXT))
        await term.streaming(start)
        proxy.cut()
        printed = await sending
    assert proxy.cuts == 1
    assert RECONNECTING.search(printed), printed
    cid = session.conversation_id
    assert cid is not None
    reply = (await Http(client_server, user).messages(cid))[-1]
    assert reply["status"] == "COMPLETE"
    assert without_notices(printed).count(reply["text"]) == 1


@pytest.fixture(scope="module")
def jwt_client_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "LLAMAQL_AUTH": "jwt",
        "LLAMAQL_JWT_SECRET": SECRET,
        "LLAMAQL_CONTEXT_SIZE": "1024",
        "LLAMAQL_AUTO_TITLE": "false",
    }
    with served(tmp_path_factory.mktemp("client-live-jwt"), "jwt", env) as server:
        yield server


def token_command(folder: Path, subject: str) -> tuple[str, Path]:
    """A --token-command that prints a fresh token for `subject` and counts its runs."""
    runs = folder / "runs"
    script = folder / "fresh_token.py"  # not token.py: that would shadow the stdlib module
    script.write_text(
        "import time, jwt\n"
        f"open({str(runs)!r}, 'a').write('x')\n"
        f"print(jwt.encode({{'sub': {subject!r}, 'exp': int(time.time()) + 600}}, "
        f"{SECRET!r}, 'HS256'))\n"
    )
    return f"{sys.executable} {script}", runs


async def test_a_token_that_expires_mid_reply_is_renewed_and_the_reply_ends_complete(
    jwt_client_server: Server, tmp_path: Path
) -> None:
    subject = str(uuid.uuid4())
    # Accepted for two more seconds (its exp is already past, within the leeway).
    short = jwt.encode({"sub": subject, "exp": int(time.time()) + 2 - LEEWAY_S}, SECRET, "HS256")
    command, runs = token_command(tmp_path, subject)
    identity = Identity.of(None, short)
    async with GraphQLHttp(
        jwt_client_server.http_url, identity, tokens=TokenSource(command)
    ) as api:
        output = io.StringIO()
        session = ChatSession(
            api=api, ws_url=jwt_client_server.ws_url, console=Console(output), options=LONG_OPTIONS
        )
        term = Terminal(session=session, output=output, user=subject)
        await term.run("/new Short-lived token")
        printed = await term.run(LONG_TEXT)
        cid = session.conversation_id
        assert cid is not None
        # The socket was closed at the token's expiry, the client took a new token and
        # followed the same reply, which the closed socket did not stop.
        assert RECONNECTING.search(printed), printed
        assert runs.read_text() == "x"
        assert api.identity.token != short
        stored = (await api.execute(REPLY_QUERY, id=cid))["conversation"]["messages"]["edges"]
    reply = stored[-1]["node"]
    assert reply["status"] == "COMPLETE"
    assert without_notices(printed).count(reply["text"]) == 1
