"""KV files through LlamaEngine on the fake native seam: a restart keeps a conversation's
KV, only for the same user's same conversation, and forgetting a conversation drops it."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.native import FakeRuntime
from tests.unit.engine.test_batching import result_of, started_engine, submit, who

HISTORY = "the history of conversation X"


def kv_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "kv").glob("*.kv"))


async def test_a_restart_restores_a_conversation_from_its_file(tmp_path: Path) -> None:
    engine = await started_engine(tmp_path, FakeRuntime(sequences=1), parallel=1)
    await result_of(await submit(engine, HISTORY, who("a", "x")))
    await engine.stop()  # the sequence still holds X: it is written as the engine stops
    assert len(kv_files(tmp_path)) == 1

    runtime = FakeRuntime(sequences=1)
    engine = await started_engine(tmp_path, runtime, parallel=1)
    try:
        # Another user's conversation of the same id, with the same text, gets nothing.
        other = await result_of(await submit(engine, HISTORY + " next", who("b", "x")))
        assert other.usage.cached_prompt_tokens == 0
        same_user = await result_of(await submit(engine, HISTORY + " next", who("a", "y")))
        assert same_user.usage.cached_prompt_tokens == 0
        turn = await result_of(await submit(engine, HISTORY + " next", who("a", "x")))
        assert turn.usage.cached_prompt_tokens == len(HISTORY) + 1  # "[" + the history
        assert runtime.restores == 1  # from X's file
    finally:
        await engine.stop()


async def test_files_off_restore_nothing_after_a_restart(tmp_path: Path) -> None:
    engine = await started_engine(tmp_path, FakeRuntime(sequences=1), parallel=1, kv_disk_mb=0)
    await result_of(await submit(engine, HISTORY, who("a", "x")))
    await engine.stop()
    engine = await started_engine(tmp_path, FakeRuntime(sequences=1), parallel=1, kv_disk_mb=0)
    try:
        turn = await result_of(await submit(engine, HISTORY + " next", who("a", "x")))
        assert turn.usage.cached_prompt_tokens == 0
    finally:
        await engine.stop()
    assert kv_files(tmp_path) == []


async def test_a_parked_state_is_written_while_the_engine_runs(tmp_path: Path) -> None:
    runtime = FakeRuntime(sequences=1)
    engine = await started_engine(tmp_path, runtime, parallel=1)
    try:
        await result_of(await submit(engine, HISTORY, who("a", "x")))
        await result_of(await submit(engine, "another", who("a", "y")))  # parks X
        assert runtime.wait_for(lambda: len(kv_files(tmp_path)) == 1)
    finally:
        await engine.stop()
    assert len(kv_files(tmp_path)) == 2  # and Y, still in the sequence, at the stop


async def test_forgetting_a_conversation_drops_its_sequence_and_file(tmp_path: Path) -> None:
    runtime = FakeRuntime(sequences=1)
    engine = await started_engine(tmp_path, runtime, parallel=1)
    try:
        await result_of(await submit(engine, HISTORY, who("a", "x")))
        await result_of(await submit(engine, "another", who("a", "y")))  # parks X
        assert runtime.wait_for(lambda: len(kv_files(tmp_path)) == 1)
        engine.forget(who("a", "x"))
        engine.forget(who("a", "y"))  # its KV is in the sequence
        assert runtime.wait_for(lambda: kv_files(tmp_path) == [])
        saves = runtime.saves
        turn = await result_of(await submit(engine, HISTORY + " next", who("a", "x")))
        assert turn.usage.cached_prompt_tokens == 0
        assert runtime.saves == saves  # Y's sequence was emptied, not parked
        engine.forget(who("a", "x"))
    finally:
        await engine.stop()
    assert kv_files(tmp_path) == []  # neither was written as the engine stopped


class RefusingRuntime(FakeRuntime):
    """llama.cpp refusing every saved state (another build, say)."""

    def restore(self, seq: int, state: bytearray) -> bool:
        self.restores += 1
        self.kv[seq] = []
        return False


async def test_a_state_llama_cpp_refuses_is_deleted_and_the_turn_goes_on(tmp_path: Path) -> None:
    engine = await started_engine(tmp_path, FakeRuntime(sequences=1), parallel=1)
    await result_of(await submit(engine, HISTORY, who("a", "x")))
    await engine.stop()
    runtime = RefusingRuntime(sequences=1)
    engine = await started_engine(tmp_path, runtime, parallel=1)
    try:
        turn = await result_of(await submit(engine, HISTORY + " next", who("a", "x")))
        assert (runtime.restores, turn.usage.cached_prompt_tokens) == (1, 0)
        assert runtime.wait_for(lambda: kv_files(tmp_path) == [])
        # The turn's own KV stays in its sequence for the next turn.
        again = await result_of(await submit(engine, HISTORY + " next and more", who("a", "x")))
        assert again.usage.cached_prompt_tokens == len(HISTORY + " next") + 1
    finally:
        await engine.stop()
