"""Reading an OpenAI-compatible chat stream: event-stream framing and chunk contents, as
llama-server, vLLM and llama-cpp-python send them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable

import pytest

from llamaql.engine.remote.sse import (
    ServerUsage,
    StreamChunk,
    StreamFormatError,
    parse_chunk,
    sse_data,
)


async def _lines(lines: Iterable[str]) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def _events(lines: Iterable[str]) -> list[str]:
    return [event async for event in sse_data(_lines(lines))]


async def test_events_end_at_blank_lines_and_stop_at_done() -> None:
    lines = ['data: {"a": 1}', "", 'data: {"b": 2}', "", "data: [DONE]", "", 'data: {"c": 3}', ""]
    assert await _events(lines) == ['{"a": 1}', '{"b": 2}']


async def test_comments_and_other_fields_are_skipped() -> None:
    # llama-cpp-python's server sends `: ping - <time>` comments as keep-alives.
    lines = [": ping - 2026-12-02", "", "event: message", "id: 7", 'data: {"a": 1}', ""]
    assert await _events(lines) == ['{"a": 1}']


async def test_data_lines_of_one_event_join_with_newlines() -> None:
    assert await _events(["data: first", "data:second", "data:  third", ""]) == [
        "first\nsecond\n third"
    ]


async def test_an_event_cut_off_by_the_end_of_the_stream_is_dropped() -> None:
    assert await _events(['data: {"a": 1}', "", 'data: {"partial": ']) == ['{"a": 1}']


def test_text_and_finish_reason() -> None:
    text = parse_chunk(json.dumps({"choices": [{"index": 0, "delta": {"content": "Par"}}]}))
    assert text == StreamChunk(text="Par")
    end = parse_chunk(json.dumps({"choices": [{"delta": {}, "finish_reason": "length"}]}))
    assert end == StreamChunk(text="", finish_reason="length")


def test_a_role_only_delta_has_no_text() -> None:
    chunk = parse_chunk(json.dumps({"choices": [{"delta": {"role": "assistant"}}]}))
    assert chunk == StreamChunk()


def test_llama_server_usage_and_timings() -> None:
    body = {
        "choices": [],
        "usage": {"completion_tokens": 12, "prompt_tokens": 40, "total_tokens": 52},
        "timings": {
            "cache_n": 30,
            "prompt_n": 10,
            "prompt_ms": 21.5,
            "predicted_n": 12,
            "predicted_ms": 150.0,
            "predicted_per_second": 80.0,
        },
    }
    assert parse_chunk(json.dumps(body)).usage == ServerUsage(
        prompt_tokens=40,
        cached_prompt_tokens=30,
        completion_tokens=12,
        prompt_ms=21.5,
        generation_ms=150.0,
        tokens_per_second=80.0,
    )


def test_vllm_usage_with_cached_prompt_details() -> None:
    body = {
        "choices": [],
        "usage": {
            "prompt_tokens": 9,
            "completion_tokens": 3,
            "prompt_tokens_details": {"cached_tokens": 4},
        },
    }
    assert parse_chunk(json.dumps(body)).usage == ServerUsage(
        prompt_tokens=9, cached_prompt_tokens=4, completion_tokens=3
    )


def test_figures_of_the_wrong_type_are_ignored() -> None:
    body = {"usage": {"prompt_tokens": "9", "completion_tokens": True}, "timings": []}
    assert parse_chunk(json.dumps(body)).usage == ServerUsage()


def test_later_figures_override_earlier_ones_only_where_given() -> None:
    early = ServerUsage(prompt_tokens=5, prompt_ms=2.0)
    later = ServerUsage(prompt_tokens=6, completion_tokens=3)
    assert early.merged(later) == ServerUsage(prompt_tokens=6, completion_tokens=3, prompt_ms=2.0)


def test_an_error_event_carries_its_message() -> None:
    chunk = parse_chunk(json.dumps({"error": {"code": 500, "message": "slot unavailable"}}))
    assert chunk.error == "slot unavailable"


@pytest.mark.parametrize("data", ["{not json", "[1, 2]", '{"choices": {"delta": 1}}'])
def test_malformed_events_are_refused(data: str) -> None:
    with pytest.raises(StreamFormatError):
        parse_chunk(data)
