"""Several real models on one server, in one run: the models query, a model per
conversation, two models streaming at once, load on demand (the loading flag), a third
model unloading the least recently used idle one (never one with a live reply), a gone
file and a failing load as MODEL_UNAVAILABLE, and user scoping."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.eventually import eventually
from tests.integration.chat.live import LONG_OPTIONS, LONG_TEXT, Http, Server, connect, new_user
from tests.integration.models.conftest import BROKEN, DEFAULT, Q4, Q8

pytestmark = [pytest.mark.model, pytest.mark.slow]

GREEDY = {"temperature": 0.0, "maxTokens": 12}
MODELS = "{ models { name loaded loading liveReplies quantization fileSize default } }"
COUNT = "{ conversations(first: 100) { totalCount } }"


async def models(http: Http) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in (await http.data(MODELS))["models"]}


async def loaded(http: Http) -> set[str]:
    return {name for name, m in (await models(http)).items() if m["loaded"]}


async def send(ws: Any, cid: str, text: str = "Say hello.", options: Any = None) -> list[Any]:
    events: list[Any] = await ws.stream(await ws.send_message(cid, text, options or GREEDY))
    return events


async def test_models_are_listed_and_each_conversation_answers_with_its_own(
    models_server: Server, models_folder: Path
) -> None:
    user = new_user()
    http = Http(models_server, user)
    listed = await models(http)
    assert set(listed) == {DEFAULT, Q8, Q4, BROKEN}
    assert listed[DEFAULT]["default"]
    assert listed[DEFAULT]["loaded"]
    assert not listed[Q8]["loaded"]
    assert (listed[Q8]["quantization"], listed[Q4]["quantization"]) == ("Q8_0", "Q4_0")
    one = await http.data('{ model(name: "smol-q8") { name contextSize loaded } }')
    assert one["model"] == {"name": Q8, "contextSize": 512, "loaded": False}

    # An unknown model: BAD_USER_INPUT, nothing written.
    before = (await http.data(COUNT))["conversations"]["totalCount"]
    refused = await http.post('mutation { createConversation(input: {model: "nope"}) { id } }')
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert (await http.data(COUNT))["conversations"]["totalCount"] == before

    # Two conversations on two models stream at once; the second model loads on demand.
    on_default = await http.create_conversation()
    on_q8 = await http.create_conversation(model=Q8)
    async with connect(models_server, user) as ws, connect(models_server, user) as ws2:
        first, second = await asyncio.gather(send(ws, on_default), send(ws2, on_q8))
    assert first[-1]["__typename"] == second[-1]["__typename"] == "MessageCompleted"
    assert first[-1]["message"]["model"] == DEFAULT
    assert second[-1]["message"]["model"] == Q8
    flags = [e["loading"] for e in second if e["__typename"] == "MessageQueued"]
    assert flags[0] is True  # waiting for the load...
    assert flags[-1] is False  # ...and told when it is over
    stored = await http.data(
        "query($id: ID!) { conversation(id: $id) { model messages { edges { node { model } } } } }",
        id=on_q8,
    )
    assert stored["conversation"]["model"] == Q8
    assert [e["node"]["model"] for e in stored["conversation"]["messages"]["edges"]] == [None, Q8]
    assert await loaded(http) == {DEFAULT, Q8}
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"http://127.0.0.1:{models_server.port}/metrics")).text
    assert f'llamaql_model_loaded{{model="{Q8}"}} 1.0' in metrics
    assert f'llamaql_model_generated_tokens_total{{model="{Q8}"}}' in metrics

    # A third model: the busy default is the least recently used, yet the idle Q8 goes.
    on_q4 = await http.create_conversation(model=Q4)
    async with connect(models_server, user) as ws:
        long_reply = await ws.send_message(on_default, LONG_TEXT, LONG_OPTIONS)
        await ws.until(long_reply, "TokenDelta")
        await send(ws, on_q8)  # Q8 is now used after the default's live reply began
        third = await send(ws, on_q4)
        assert third[-1]["message"]["model"] == Q4
        assert await loaded(http) == {DEFAULT, Q4}
        done = await ws.stream(long_reply)
        assert done[-1]["message"]["status"] == "COMPLETE"  # never unloaded under it

    # Switching a conversation's model mid-way: the whole branch goes to the new model.
    switched = await http.data(
        'mutation($id: ID!) { updateConversation(id: $id, input: {model: "smol-q4_0"}) { model } }',
        id=on_default,
    )
    assert switched["updateConversation"]["model"] == Q4
    async with connect(models_server, user) as ws:
        after = await send(ws, on_default, "And again?")
    assert after[-1]["message"]["model"] == Q4
    assert after[-1]["message"]["usage"]["promptTokens"] > 30  # the earlier turns too

    # The file of an unloaded model removed: MODEL_UNAVAILABLE, not retryable, nothing written.
    (models_folder / f"{Q8}.gguf").unlink()
    count = len(await http.messages(on_q8))
    async with connect(models_server, user) as ws:
        gone = await send(ws, on_q8)
    assert [e["__typename"] for e in gone] == ["MessageFailed"]
    assert (gone[0]["code"], gone[0]["retryable"]) == ("MODEL_UNAVAILABLE", False)
    assert len(await http.messages(on_q8)) == count
    assert Q8 not in await models(http)

    # A file llama.cpp cannot load fails its reply with the reason (a truncated file is
    # refused as soon as its vocabulary is read); the others keep serving.
    on_broken = await http.create_conversation(model=BROKEN)
    async with connect(models_server, user) as ws:
        broken = await send(ws, on_broken)
        assert broken[-1]["__typename"] == "MessageFailed"
        assert broken[-1]["code"] == "MODEL_UNAVAILABLE"
        assert BROKEN in broken[-1]["reason"]
        assert not broken[-1]["retryable"]
        still = await send(ws, on_q4)
    assert still[-1]["__typename"] == "MessageCompleted"

    # Another user's conversation stays NOT_FOUND, model or not.
    other = Http(models_server, new_user())
    moved = await other.post(
        'mutation($id: ID!) { updateConversation(id: $id, input: {model: "smol-q4_0"}) { id } }',
        id=on_q4,
    )
    assert moved["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    async with connect(models_server, other.user) as ws:
        theirs = await send(ws, on_q4)
    assert theirs[-1]["code"] == "NOT_FOUND"
    await eventually(lambda: loaded(http), holds=lambda names: DEFAULT in names or Q4 in names)
