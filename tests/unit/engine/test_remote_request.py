"""What the remote engine sends and counts: options mapped onto the request body, the
server's root, the ChatML estimate, the messages a budget kept, and HTTP refusals."""

from __future__ import annotations

import httpx
import pytest

from llamaql.engine.intake import kept_messages
from llamaql.engine.remote.request import chat_body
from llamaql.engine.remote.server import (
    EstimatedCounter,
    chatml,
    check_response,
    server_root,
)
from llamaql.ports.engine import ChatMessage, EngineError, EngineUnavailableError, ResolvedOptions

OPTIONS = ResolvedOptions(
    temperature=0.2,
    top_p=0.9,
    top_k=20,
    min_p=0.1,
    repeat_penalty=1.1,
    seed=42,
    max_tokens=64,
    stop=("END",),
)
MESSAGES = [ChatMessage("system", "Be brief."), ChatMessage("user", "Hi")]


def test_every_resolved_option_is_sent_under_each_servers_name() -> None:
    body = chat_body(MESSAGES, OPTIONS, model="smol")
    assert body == {
        "model": "smol",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 20,
        "min_p": 0.1,
        "repeat_penalty": 1.1,
        "repetition_penalty": 1.1,
        "seed": 42,
        "stop": ["END"],
    }


def test_a_random_seed_no_stop_and_the_default_model_are_left_out() -> None:
    options = ResolvedOptions(
        temperature=0.8,
        top_p=0.95,
        top_k=40,
        min_p=0.05,
        repeat_penalty=1.0,
        seed=None,
        max_tokens=8,
        stop=(),
    )
    body = chat_body(MESSAGES, options, model=None)
    assert "seed" not in body
    assert "stop" not in body
    assert "model" not in body


@pytest.mark.parametrize(
    ("url", "root"),
    [
        ("http://gpu-host:8080/v1", "http://gpu-host:8080"),
        ("http://gpu-host:8080/v1/", "http://gpu-host:8080"),
        ("https://proxy.example/llm/v1", "https://proxy.example/llm"),
        ("http://localhost:11434", "http://localhost:11434"),
    ],
)
def test_server_root_drops_the_api_version(url: str, root: str) -> None:
    assert server_root(url) == root


def test_chatml_rendering_ends_at_the_assistants_turn() -> None:
    assert chatml(MESSAGES) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_the_estimate_counts_one_token_per_three_bytes_and_probes_the_server() -> None:
    counter = EstimatedCounter()
    text, tokens = counter.encode(MESSAGES, None)
    assert text == chatml(MESSAGES)
    assert len(tokens) == -(-len(text.encode()) // 3)
    assert counter.probes


def test_kept_messages_keep_the_system_prompt_and_drop_the_oldest_turns() -> None:
    history = [
        ChatMessage("system", "S"),
        ChatMessage("user", "1"),
        ChatMessage("assistant", "a1"),
        ChatMessage("user", "2"),
    ]
    assert kept_messages(history, 0) == tuple(history)
    assert kept_messages(history, 2) == (history[0], history[3])


@pytest.mark.parametrize("status", [500, 503, 429, 401, 403])
def test_server_errors_and_a_refused_key_are_retryable(status: int) -> None:
    with pytest.raises(EngineUnavailableError):
        check_response(httpx.Response(status), "asking")


@pytest.mark.parametrize("status", [400, 404, 422])
def test_refusals_are_engine_errors_but_not_unavailable(status: int) -> None:
    with pytest.raises(EngineError) as caught:
        check_response(httpx.Response(status), "asking")
    assert not isinstance(caught.value, EngineUnavailableError)
    assert str(status) in str(caught.value)


def test_a_successful_answer_is_its_json() -> None:
    assert check_response(httpx.Response(200, json={"tokens": [1]}), "asking") == {"tokens": [1]}
