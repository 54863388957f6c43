"""A remote llamaql over an upstream with two models (llama-cpp-python's server with a
config file: the default model and a Q8_0 copy, by alias): the models query lists the
upstream's models, an unknown name is BAD_USER_INPUT with nothing written, and a
conversation's model is the one the upstream answers with."""

from __future__ import annotations

import pytest
from tests.integration.chat.live import Http, Server, connect, new_user
from tests.integration.remote.conftest import CONTEXT_SIZE, UPSTREAM_DEFAULT, UPSTREAM_Q8
from tests.integration.remote.upstream import Upstream

pytestmark = [pytest.mark.model, pytest.mark.slow]

MODELS = "{ models { name default loaded fileSize quantization contextSize } }"
COUNT = "{ conversations(first: 100) { totalCount } }"
GREEDY = {"temperature": 0.0, "maxTokens": 8}


def loads_of(upstream: Upstream, path: str) -> int:
    """How often llama_cpp.server has loaded the file (its loader logs the path)."""
    return upstream.log.read_text(errors="replace").count(f"from {path}")


async def test_the_upstreams_models_are_listed_and_chosen_per_conversation(
    remote_two_models: Server, two_model_upstream: Upstream
) -> None:
    http = Http(remote_two_models, new_user())
    listed = (await http.data(MODELS))["models"]
    assert listed == [
        {
            "name": UPSTREAM_DEFAULT,
            "default": True,
            "loaded": True,
            "fileSize": 0,  # unknown of a remote model
            "quantization": "unknown",
            "contextSize": CONTEXT_SIZE,
        },
        {
            "name": UPSTREAM_Q8,
            "default": False,
            "loaded": True,
            "fileSize": 0,
            "quantization": "unknown",
            "contextSize": CONTEXT_SIZE,
        },
    ]

    # An unknown name: BAD_USER_INPUT, nothing written.
    before = (await http.data(COUNT))["conversations"]["totalCount"]
    refused = await http.post('mutation { createConversation(input: {model: "nope"}) { id } }')
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "smol-q8" in refused["errors"][0]["message"]  # it names what there is
    assert (await http.data(COUNT))["conversations"]["totalCount"] == before

    # A conversation on the Q8_0 model: the upstream loads that file and answers with it.
    q8_path = str(two_model_upstream.models[UPSTREAM_Q8])  # type: ignore[index]
    loads = loads_of(two_model_upstream, q8_path)
    cid = await http.create_conversation(model=UPSTREAM_Q8)
    async with connect(remote_two_models, http.user) as ws:
        events = await ws.stream(await ws.send_message(cid, "Say hello.", GREEDY))
    done = events[-1]
    assert done["__typename"] == "MessageCompleted", done
    assert done["message"]["model"] == UPSTREAM_Q8
    assert done["message"]["text"]
    assert loads_of(two_model_upstream, q8_path) > loads

    # Back to the server's default (null): the reply records the default's name.
    await http.data(
        "mutation($id: ID!) { updateConversation(id: $id, input: {model: null}) { id } }",
        id=cid,
    )
    async with connect(remote_two_models, http.user) as ws:
        again = await ws.stream(await ws.send_message(cid, "And again?", GREEDY))
    assert again[-1]["message"]["model"] == UPSTREAM_DEFAULT
