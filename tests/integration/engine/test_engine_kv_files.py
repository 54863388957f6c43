"""KV files with the real model: a conversation's next turn after a restart evaluates only
its new tokens, and only for the same user's same conversation; a damaged file is
deleted and evaluated around, never loaded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from tests.integration.engine.conftest import MODEL
from tests.integration.engine.test_engine_parking import A1

from llamaql.config import load_config
from llamaql.container import shared_start
from llamaql.engine.local.engine import LlamaEngine
from llamaql.ports.engine import ChatMessage, GenerationResult, Requester, SamplingOptions

pytestmark = pytest.mark.model
ALICE_X = Requester("alice", "x")
OPTIONS = SamplingOptions(temperature=0.0, max_tokens=12)


async def ask(
    engine: LlamaEngine, messages: list[ChatMessage], requester: Requester
) -> GenerationResult:
    handle = engine.submit(await engine.prepare(messages, OPTIONS), requester)
    result = [event async for event in handle.events()][-1]
    assert isinstance(result, GenerationResult)
    return result


@asynccontextmanager
async def started(kv_dir: Path, **overrides: object) -> AsyncIterator[LlamaEngine]:
    """A fresh engine (a server start) on the default model, KV files in `kv_dir`."""
    if not MODEL.is_file():
        pytest.skip(f"{MODEL} is missing: run `make model`")
    config = load_config(model_path=MODEL, kv_dir=kv_dir, n_batch=64, parallel=2, **overrides)
    engine = LlamaEngine(config.engine, shared_start=shared_start(config.chat))
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


def second_turn(first: GenerationResult) -> list[ChatMessage]:
    return [*A1, ChatMessage("assistant", first.text), ChatMessage("user", "Why in rain?")]


def kv_files(kv_dir: Path) -> list[Path]:
    return sorted(kv_dir.glob("*.kv"))


async def turn_two_after_restart(
    kv_dir: Path, requester: Requester, damage: Callable[[Path], None] | None = None
) -> tuple[GenerationResult, GenerationResult]:
    """Alice's first turn, a restart (after `damage` to the files), then `requester`'s
    second turn of the same conversation text."""
    async with started(kv_dir) as engine:
        first = await ask(engine, A1, ALICE_X)
    [path] = kv_files(kv_dir)  # the sequence's KV, written as the engine stopped
    if damage is not None:
        damage(path)
    async with started(kv_dir) as engine:
        return first, await ask(engine, second_turn(first), requester)


async def test_the_next_turn_after_a_restart_evaluates_only_its_new_tokens(
    tmp_path: Path,
) -> None:
    first, second = await turn_two_after_restart(tmp_path / "kv", ALICE_X)
    # Without a restart, the same turn reuses the same tokens and answers the same.
    async with started(tmp_path / "no-restart") as engine:
        assert (await ask(engine, A1, ALICE_X)).text == first.text
        unbroken = await ask(engine, second_turn(first), ALICE_X)
    assert second.usage.cached_prompt_tokens == unbroken.usage.cached_prompt_tokens
    assert second.usage.cached_prompt_tokens >= first.usage.prompt_tokens
    assert second.text == unbroken.text


async def test_a_file_is_never_restored_for_another_requester(tmp_path: Path) -> None:
    kv_dir = tmp_path / "kv"
    async with started(kv_dir) as engine:
        first = await ask(engine, A1, ALICE_X)
    async with started(kv_dir) as engine:
        # Another user's conversation of the same id; the same user's other conversation.
        for other in (Requester("bob", "x"), Requester("alice", "y")):
            reply = await ask(engine, second_turn(first), other)
            # A1's system prompt is not the server's default: no shared prompt start.
            assert reply.usage.cached_prompt_tokens == 0, other


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-1000])


@pytest.mark.parametrize("damage", [flip_last_byte, truncate], ids=["corrupt", "truncated"])
async def test_a_damaged_file_is_deleted_and_the_turn_evaluated_in_full(
    tmp_path: Path, damage: Callable[[Path], None], caplog: pytest.LogCaptureFixture
) -> None:
    kv_dir = tmp_path / "kv"
    first, second = await turn_two_after_restart(kv_dir, ALICE_X, damage)
    assert second.usage.cached_prompt_tokens == 0
    assert "deleted an unusable KV file" in caplog.text
    # The damaged file is gone; the one there now, written at the stop, is whole.
    assert len(kv_files(kv_dir)) == 1
    third = [*second_turn(first), ChatMessage("assistant", second.text)]
    async with started(kv_dir) as engine:
        reply = await ask(engine, [*third, ChatMessage("user", "And at night?")], ALICE_X)
    assert reply.usage.cached_prompt_tokens >= second.usage.prompt_tokens


async def test_forgetting_a_conversation_deletes_its_file(tmp_path: Path) -> None:
    kv_dir = tmp_path / "kv"
    async with started(kv_dir) as engine:
        await ask(engine, A1, ALICE_X)
    assert len(kv_files(kv_dir)) == 1
    async with started(kv_dir) as engine:
        engine.forget(ALICE_X)
        for _ in range(200):
            if not kv_files(kv_dir):
                break
            await asyncio.sleep(0.05)
        assert kv_files(kv_dir) == []
    assert kv_files(kv_dir) == []


async def test_files_of_another_context_size_are_not_restored(tmp_path: Path) -> None:
    kv_dir = tmp_path / "kv"
    async with started(kv_dir, context_size=2048) as engine:
        first = await ask(engine, A1, ALICE_X)
    async with started(kv_dir, context_size=1024) as engine:
        second = await ask(engine, second_turn(first), ALICE_X)
    assert second.usage.cached_prompt_tokens == 0
