"""`llamaql chat`'s /models and /model against a real server with two models (the default
and a Q8_0 copy): the list, a model chosen for the current conversation and the next new
one, "loading model…" while it loads, each reply and /history naming its model, and an
unknown name refused with nothing changed."""

from __future__ import annotations

import pytest
from tests.integration.chat.live import DEFAULT_MODEL_PATH, Http, Server
from tests.integration.client.conftest import TerminalFactory
from tests.integration.model_files import SECOND_MODEL

pytestmark = [pytest.mark.model, pytest.mark.slow]

SHORT = {"temperature": 0.0, "maxTokens": 8}
DEFAULT = DEFAULT_MODEL_PATH.stem
MODEL_OF = "query($id: ID!) { conversation(id: $id) { model } }"


async def test_models_lists_and_model_chooses_for_this_and_new_conversations(
    models_terminal: TerminalFactory, models_client_server: Server
) -> None:
    term = models_terminal(options=SHORT)
    http = Http(models_client_server, term.user)
    listing = (await term.run("/models")).splitlines()
    assert [line.lstrip("* ").split()[0] for line in listing] == sorted([DEFAULT, SECOND_MODEL])
    default_row = next(line for line in listing if DEFAULT in line)
    assert "loaded" in default_row
    assert "default" in default_row
    assert "MB" in default_row
    assert "Q4_1" in default_row
    assert "not loaded" in next(line for line in listing if SECOND_MODEL in line)

    # On the default model first; then this conversation moves to the second one.
    first = await term.run("Say hello.")
    assert f"{DEFAULT}]" in first  # "[NAME]" after the reply, or "[stopped at … · NAME]"
    cid = term.session.conversation_id
    assert cid is not None
    chosen = await term.run(f"/model {SECOND_MODEL}")
    assert chosen.strip() == f"[model: {SECOND_MODEL} for this conversation and new ones]"
    assert (await http.data(MODEL_OF, id=cid))["conversation"]["model"] == SECOND_MODEL
    second = await term.run("And again?")
    assert "[loading model…]" in second  # the second model was not loaded yet
    assert f"{SECOND_MODEL}]" in second
    assert (await term.run("/models")).count("*") == 1  # this conversation's model, marked
    history = await term.run("/history")
    assert f"bot ({DEFAULT})> " in history
    assert f"bot ({SECOND_MODEL})> " in history

    # The next new conversation is created with it too.
    created = await term.run("/new Next")
    assert f"model {SECOND_MODEL}" in created
    new_cid = term.session.conversation_id
    assert (await http.data(MODEL_OF, id=new_cid))["conversation"]["model"] == SECOND_MODEL
    assert f"[this conversation: {SECOND_MODEL}]" in await term.run("/model")

    # An unknown name: refused, nothing changed; `default` goes back to the server's.
    refused = await term.run("/model nope")
    assert refused.startswith("error BAD_USER_INPUT: unknown model 'nope'")
    assert (await http.data(MODEL_OF, id=new_cid))["conversation"]["model"] == SECOND_MODEL
    await term.run("/model default")
    assert (await http.data(MODEL_OF, id=new_cid))["conversation"]["model"] is None
    assert f"[new conversations: the server's default ({DEFAULT})]" in await term.run("/model")
