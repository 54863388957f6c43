"""KVFileStore: one checked file per model and conversation, atomic, within a disk budget."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from llamaql.engine.local.kv_files import KVFileStore, model_checksum
from llamaql.engine.local.parking import ParkedState
from llamaql.ports.engine import Requester

ALICE_X = Requester("alice@example.com", "x")
ALICE_Y = Requester("alice@example.com", "y")
BOB_X = Requester("bob", "x")
MODEL = "model 1234; llama-cpp-python 0.3.36; n_ctx_seq 8192; type_k 1"


def state(size: int, *tokens: int) -> ParkedState:
    return ParkedState(tokens, bytearray(range(256)) * (size // 256) + bytearray(size % 256))


@pytest.fixture
def store(tmp_path: Path) -> KVFileStore:
    opened = KVFileStore(tmp_path / "kv", 1024 * 1024, MODEL)
    opened.open()
    return opened


def test_a_state_comes_back_as_written(store: KVFileStore) -> None:
    parked = state(5000, 1, 2, 70000, 3)
    assert store.write(ALICE_X, parked)
    back = store.read(ALICE_X)
    assert back is not None
    assert back.tokens == (1, 2, 70000, 3)
    assert back.state == parked.state
    assert store.read(ALICE_X) is not None  # reading keeps the file (for a later restart)


def test_files_are_private_and_named_without_the_user(store: KVFileStore) -> None:
    assert store.write(ALICE_X, state(100, 1))
    [path] = store.files()
    assert re.fullmatch(r"[0-9a-f]{64}\.kv", path.name)  # a hash of model, user, conversation
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700


def test_only_the_same_user_and_conversation_read_a_state(store: KVFileStore) -> None:
    assert store.write(ALICE_X, state(100, 1))
    assert store.read(BOB_X) is None  # another user's conversation of the same id
    assert store.read(ALICE_Y) is None  # the same user's other conversation
    assert len(store.files()) == 1


def plant(store: KVFileStore, source: Requester, target: Path) -> None:
    """Put `source`'s file where another key's file would be."""
    os.replace(store.path(source), target)


def test_a_file_of_another_conversation_is_deleted_not_read(store: KVFileStore) -> None:
    assert store.write(ALICE_X, state(100, 1))
    plant(store, ALICE_X, store.path(BOB_X))
    assert store.read(BOB_X) is None
    assert store.files() == []


def test_a_file_of_another_model_or_context_is_deleted_not_read(
    store: KVFileStore, tmp_path: Path
) -> None:
    other = KVFileStore(store.directory, store.capacity, MODEL.replace("8192", "4096"))
    assert other.path(ALICE_X) != store.path(ALICE_X)
    assert other.write(ALICE_X, state(100, 1))
    plant(other, ALICE_X, store.path(ALICE_X))
    assert store.read(ALICE_X) is None
    assert store.files() == []


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[:-1], id="truncated state"),
        pytest.param(lambda data: data[:30], id="truncated header"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: data[:-10] + b"x" + data[-9:], id="one state byte"),
        pytest.param(lambda data: data + b"\0", id="trailing byte"),
        pytest.param(lambda data: b"GGUF" + data[4:], id="magic"),
        pytest.param(lambda data: data.replace(b'"tokens": 2', b'"tokens": 1'), id="header"),
        pytest.param(
            lambda data: data.replace(b"\x05\x00\x00\x00", b"\x06\x00\x00\x00", 1), id="a token"
        ),
    ],
)
def test_a_damaged_file_is_deleted_not_read(store: KVFileStore, damage: object) -> None:
    assert store.write(ALICE_X, state(1000, 5, 6))
    path = store.path(ALICE_X)
    damaged = damage(path.read_bytes())  # type: ignore[operator]
    assert damaged != path.read_bytes()
    path.write_bytes(damaged)
    assert store.read(ALICE_X) is None
    assert not path.exists()


def test_the_least_recently_used_go_first_over_the_budget(tmp_path: Path) -> None:
    store = KVFileStore(tmp_path / "kv", 25000, MODEL)
    store.open()
    assert store.write(ALICE_X, state(10000, 1))
    assert store.write(ALICE_Y, state(10000, 2))
    age(store, ALICE_X, 30)
    age(store, ALICE_Y, 20)
    assert store.read(ALICE_X) is not None  # used now: Y is the least recently used
    assert store.write(BOB_X, state(10000, 3))
    assert store.read(ALICE_Y) is None
    assert store.read(ALICE_X) is not None
    assert store.read(BOB_X) is not None
    assert sum(path.stat().st_size for path in store.files()) <= 25000


def test_a_state_larger_than_the_budget_is_not_written(tmp_path: Path) -> None:
    store = KVFileStore(tmp_path / "kv", 1000, MODEL)
    store.open()
    assert not store.write(ALICE_X, state(1000, 1))
    assert store.files() == []


def test_a_lowered_budget_evicts_at_open(store: KVFileStore) -> None:
    for n, owner in enumerate((ALICE_X, ALICE_Y, BOB_X)):
        assert store.write(owner, state(10000, n))
        age(store, owner, 30 - n)
    smaller = KVFileStore(store.directory, 25000, MODEL)
    smaller.open()
    assert smaller.read(ALICE_X) is None  # the oldest
    assert smaller.read(BOB_X) is not None


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(
    store: KVFileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert store.write(ALICE_X, state(100, 1))

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    assert not store.write(ALICE_X, state(200, 2))
    monkeypatch.undo()
    assert sorted(os.listdir(store.directory)) == [store.path(ALICE_X).name]
    back = store.read(ALICE_X)
    assert back is not None
    assert back.tokens == (1,)


def test_a_crash_mid_write_leaves_a_temporary_file_that_open_removes(
    store: KVFileStore,
) -> None:
    leftover = store.directory / "abc.tmp"
    leftover.write_bytes(b"LQKV partial")
    os.utime(leftover, (1, 1))
    fresh = store.directory / "def.tmp"  # another server's write in progress
    fresh.write_bytes(b"LQKV partial")
    assert store.read(ALICE_X) is None
    store.open()
    assert not leftover.exists()
    assert fresh.exists()


def test_deleting_removes_the_file(store: KVFileStore) -> None:
    assert store.write(ALICE_X, state(100, 1))
    store.delete(ALICE_X)
    store.delete(ALICE_X)  # idempotent
    assert store.read(ALICE_X) is None
    assert store.files() == []


def test_the_model_checksum_follows_content_and_modification_time(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"a" * 3_000_000)
    first = model_checksum(model)
    assert model_checksum(model) == first
    os.utime(model, ns=(1, 1))
    touched = model_checksum(model)
    assert touched != first
    model.write_bytes(b"a" * 2_999_999 + b"b")
    os.utime(model, ns=(1, 1))
    assert model_checksum(model) != touched  # the last MiB differs


def age(store: KVFileStore, owner: Requester, seconds_ago: float) -> None:
    path = store.path(owner)
    when = path.stat().st_mtime - seconds_ago
    os.utime(path, (when, when))
