"""The remote engine's models on a fake upstream listing two: the list (cached briefly),
an unknown name refused, a conversation's model sent upstream and counted with, a model
gone from the upstream, and the listing formats of llama-server's router and vLLM."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from tests.fakes.openai_server import FakeOpenAIServer
from tests.unit.engine.test_remote_engine import ALICE, MESSAGES, drain, running

from llamaql.engine.remote import models as remote_models
from llamaql.engine.remote.listing import RemoteModel, listed_models
from llamaql.engine.remote.models import RemoteModelList
from llamaql.ports.engine import (
    EngineUnavailableError,
    GenerationResult,
    ModelUnavailableError,
    SamplingOptions,
    UnknownModelError,
)

GREEDY = SamplingOptions(temperature=0.0, max_tokens=8)


def listings(server: FakeOpenAIServer) -> int:
    return len([r for r in server.requests if r.url.path == "/v1/models"])


async def test_models_lists_the_upstreams_models_with_the_default_first() -> None:
    server = FakeOpenAIServer("llama-server", models=["fake-model", "other"])
    async with running(server) as engine:
        statuses = await engine.models()
        assert [(s.name, s.is_default, s.loaded) for s in statuses] == [
            ("fake-model", True, True),
            ("other", False, True),
        ]
        # Unknown of a remote model: what its file would say.
        assert (statuses[1].file_size, statuses[1].quantization) == (0, "unknown")
        assert statuses[1].context_size == 1024
        info = await engine.model_info("other")
        assert (info.name, info.backend, info.context_size) == ("other", "remote", 1024)
        await engine.check_model("other")
        with pytest.raises(UnknownModelError, match=r"'nope'.*'fake-model', 'other'"):
            await engine.check_model("nope")
        with pytest.raises(UnknownModelError):
            await engine.model_info("nope")


async def test_the_list_is_cached_briefly_then_asked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = FakeOpenAIServer("llama-server", models=["fake-model", "other"])
    async with running(server) as engine:
        asked = listings(server)
        await engine.models()
        await engine.check_model("other")
        assert listings(server) == asked  # discovery's listing still answers
    monkeypatch.setattr(remote_models, "LISTING_TTL_S", 0.0)
    async with running(server) as engine:
        server.models.append("pulled-since")
        await engine.check_model("pulled-since")
        server.models.remove("other")
        assert [s.name for s in await engine.models()] == ["fake-model", "pulled-since"]


async def test_a_conversations_model_is_counted_with_and_sent_upstream() -> None:
    server = FakeOpenAIServer("llama-server", models=["fake-model", "other"])
    async with running(server) as engine:
        prompt = await engine.prepare(MESSAGES, GREEDY, model="other")
        assert prompt.model == "other"
        assert server.bodies("/apply-template")[-1]["model"] == "other"
        assert server.bodies("/tokenize")[-1]["model"] == "other"
        done = (await drain(engine.submit(prompt, ALICE).events()))[-1]
        assert isinstance(done, GenerationResult)
        default = await engine.prepare(MESSAGES, GREEDY)
        assert default.model == "fake-model"  # None asked: the server's default, named
        await drain(engine.submit(default, ALICE).events())
    assert [b["model"] for b in server.bodies("/v1/chat/completions")] == [
        "other",
        "fake-model",  # None: the server's default, as before
    ]


async def test_vllm_counts_with_the_conversations_model_and_its_context() -> None:
    server = FakeOpenAIServer("vllm", context=300, models=["fake-model", "other"])
    async with running(server) as engine:
        await engine.prepare(MESSAGES, GREEDY, model="other")
        assert server.bodies("/tokenize")[-1]["model"] == "other"
        assert (await engine.model_info("other")).context_size == 300


async def test_a_model_gone_from_the_upstream_is_unavailable_at_prepare(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(remote_models, "LISTING_TTL_S", 0.0)
    server = FakeOpenAIServer("llama-server", models=["fake-model", "other"])
    async with running(server) as engine:
        server.models.remove("other")
        sent = len(server.bodies("/v1/chat/completions"))
        with pytest.raises(ModelUnavailableError, match="no longer listed"):
            await engine.prepare(MESSAGES, GREEDY, model="other")
        assert len(server.bodies("/v1/chat/completions")) == sent


async def test_a_down_upstream_answers_with_the_last_list_or_the_default_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(remote_models, "LISTING_TTL_S", 0.0)
    server = FakeOpenAIServer("llama-server", models=["fake-model", "other"])
    async with running(server) as engine:
        server.down = True
        assert [s.name for s in await engine.models()] == ["fake-model", "other"]
        await engine.check_model("other")
    async with running(server, engine_model="configured") as engine:
        # Never reached: the configured default alone, not loaded; a name cannot be checked.
        statuses = await engine.models()
        assert [(s.name, s.loaded) for s in statuses] == [("configured", False)]
        assert engine.loaded_models() == ()
        with pytest.raises(EngineUnavailableError):
            await engine.check_model("other")


def test_listings_of_llama_servers_router_vllm_and_ollama_are_read() -> None:
    router = {
        "data": [
            {"id": "a", "status": {"value": "loaded"}},
            {"id": "b", "status": {"value": "unloaded"}},
            {"id": "c", "status": {"value": "loading"}},
            {"id": "a", "status": {"value": "unloaded"}},  # listed twice: the first counts
            {"object": "model"},  # no id: skipped
        ]
    }
    assert listed_models(router) == (
        RemoteModel("a", loaded=True),
        RemoteModel("b", loaded=False),
        RemoteModel("c", loaded=False, loading=True),
    )
    vllm = {"data": [{"id": "org/m", "max_model_len": 4096}]}
    assert listed_models(vllm) == (RemoteModel("org/m", context_size=4096),)
    ollama = {"object": "list", "data": [{"id": "smollm2:135m", "owned_by": "library"}]}
    assert listed_models(ollama) == (RemoteModel("smollm2:135m"),)
    assert listed_models({"error": "no"}) == ()


async def test_the_list_is_asked_once_for_callers_at_the_same_time() -> None:
    server = FakeOpenAIServer(models=["x"])
    seen: list[bool] = []
    async with httpx.AsyncClient(transport=server.transport()) as client:
        models = RemoteModelList(lambda: client, "http://h/v1", reached=seen.append, ttl_s=60)
        answers = await asyncio.gather(*(models.models() for _ in range(5)))
    assert answers == [(RemoteModel("x"),)] * 5
    assert listings(server) == 1
    assert seen == [True]
