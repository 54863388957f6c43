"""KVFileWriter: the disk on a thread of its own, newest state first, deletes in order."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from llamaql.engine.local.kv_files import KVFileStore
from llamaql.engine.local.kv_writer import LOWEST_PRIORITY, KVFileWriter
from llamaql.engine.local.parking import KVParking, ParkedState
from llamaql.ports.engine import Requester

ALICE_X = Requester("alice", "x")
BOB_X = Requester("bob", "x")
WAIT = 10.0


class HeldStore(KVFileStore):
    """A real store whose writes wait for `gate`; `started` is set as one begins."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, 1024 * 1024, "model")
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self.writes: list[tuple[int, ...]] = []

    def write(self, owner: Requester, parked: ParkedState) -> bool:
        self.started.set()
        assert self.gate.wait(WAIT)
        self.writes.append(parked.tokens)
        return super().write(owner, parked)


def state(*tokens: int, size: int = 100) -> ParkedState:
    return ParkedState(tokens, bytearray(size))


@pytest.fixture
def store(tmp_path: Path) -> HeldStore:
    held = HeldStore(tmp_path / "kv")
    held.open()
    return held


@pytest.fixture
def writer(store: HeldStore) -> Iterator[KVFileWriter]:
    started = KVFileWriter(store, pending_limit=250)
    yield started
    store.gate.set()
    started.close()


def test_a_put_returns_at_once_and_lands_on_disk(store: HeldStore, writer: KVFileWriter) -> None:
    store.gate.clear()
    assert writer.put(ALICE_X, state(1))  # the disk is held: put does not wait for it
    assert store.started.wait(WAIT)
    loaded = writer.load(ALICE_X)  # being written: the state itself, not the disk
    assert loaded is not None
    assert loaded.tokens == (1,)
    store.gate.set()
    writer.flush()
    on_disk = store.read(ALICE_X)
    assert on_disk is not None
    assert on_disk.tokens == (1,)


def test_a_newer_state_replaces_one_not_yet_written(store: HeldStore, writer: KVFileWriter) -> None:
    store.gate.clear()
    writer.put(BOB_X, state(9))  # occupies the thread
    assert store.started.wait(WAIT)
    writer.put(ALICE_X, state(1))
    writer.put(ALICE_X, state(1, 2))
    loaded = writer.load(ALICE_X)  # what waits, not the (absent) file
    assert loaded is not None
    assert loaded.tokens == (1, 2)
    store.gate.set()
    writer.flush()
    assert store.writes == [(9,), (1, 2)]


def test_a_delete_after_a_put_leaves_no_file(store: HeldStore, writer: KVFileWriter) -> None:
    store.gate.clear()
    writer.put(BOB_X, state(9))
    assert store.started.wait(WAIT)
    writer.put(ALICE_X, state(1))
    writer.delete(ALICE_X)
    assert writer.load(ALICE_X) is None
    store.gate.set()
    writer.flush()
    assert store.read(ALICE_X) is None
    assert store.writes == [(9,)]


def test_a_delete_waits_for_the_write_in_progress(store: HeldStore, writer: KVFileWriter) -> None:
    store.gate.clear()
    writer.put(ALICE_X, state(1))
    assert store.started.wait(WAIT)
    writer.delete(ALICE_X)
    store.gate.set()
    writer.flush()
    assert store.files() == []


def test_states_waiting_are_bounded(store: HeldStore, writer: KVFileWriter) -> None:
    store.gate.clear()
    writer.put(BOB_X, state(9))
    assert store.started.wait(WAIT)
    assert writer.put(ALICE_X, state(1, size=200))  # one state always fits
    assert not writer.put(Requester("carol", "x"), state(2, size=100))  # 300 > 250
    assert writer.put(ALICE_X, state(1, 2, size=150))  # replaces its own: 150


def test_close_writes_what_waits(store: HeldStore) -> None:
    writer = KVFileWriter(store)
    store.gate.clear()
    writer.put(ALICE_X, state(1))
    writer.put(BOB_X, state(2))
    threading.Timer(0.05, store.gate.set).start()
    writer.close()
    assert store.read(ALICE_X) is not None
    assert store.read(BOB_X) is not None
    assert not writer.put(ALICE_X, state(3))
    writer.delete(ALICE_X)  # after close: at once
    assert store.read(ALICE_X) is None


def test_parking_writes_through_and_reads_back_what_memory_lost(
    store: HeldStore, writer: KVFileWriter
) -> None:
    parking = KVParking(150, writer)
    assert parking.park(ALICE_X, state(1))
    assert parking.park(BOB_X, state(2))  # evicts ALICE_X from memory, not from disk
    writer.flush()
    back = parking.take(ALICE_X)
    assert back is not None
    assert back.tokens == (1,)
    assert parking.take(Requester("alice", "y")) is None


def test_parking_forget_drops_memory_and_file_and_refuses_until_seen(
    store: HeldStore, writer: KVFileWriter
) -> None:
    parking = KVParking(1000, writer)
    parking.park(ALICE_X, state(1))
    parking.forget(ALICE_X)
    assert parking.take(ALICE_X) is None
    assert not parking.park(ALICE_X, state(1, 2))  # a sequence parked it meanwhile
    assert not parking.persist(ALICE_X, state(1, 2))
    assert parking.forgotten() == {ALICE_X}
    writer.flush()
    assert store.files() == []
    assert parking.forgotten() == set()


def test_parking_with_files_only(store: HeldStore, writer: KVFileWriter) -> None:
    parking = KVParking(0, writer)
    assert parking.enabled
    assert parking.park(ALICE_X, state(1))
    assert len(parking) == 0
    writer.flush()
    assert parking.take(ALICE_X) is not None
    assert not KVParking(0).enabled


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_the_writer_thread_alone_runs_at_the_lowest_priority(
    store: HeldStore, writer: KVFileWriter
) -> None:
    caller = os.nice(0)
    store.gate.clear()
    writer.put(ALICE_X, state(1))
    assert store.started.wait(WAIT)
    thread_id = writer._thread.native_id
    # /proc/self/task/<tid>/stat: nice is the 17th field after the "(command)" one.
    stat = Path(f"/proc/self/task/{thread_id}/stat").read_text()
    assert int(stat.rsplit(")", 1)[1].split()[16]) == LOWEST_PRIORITY
    assert os.nice(0) == caller  # the process and its other threads keep theirs
    store.gate.set()
