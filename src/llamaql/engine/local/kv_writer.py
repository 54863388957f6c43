"""KV files written on a thread of their own, so the decode loop never waits for a disk.

The scheduler hands over a parked state (bytes `llama_state_seq_get_data` already copied
out of the context) and goes on decoding; the writer thread checksums and writes it.
Per conversation only the newest request waits: a newer state replaces an older one not
yet written, and a delete replaces both. What waits or is being written is what `load`
returns first, so a state is never read older than the one just parked. States waiting
take at most `pending_limit` bytes (one state always fits): beyond it a state is not
written, as a full disk queue must not hold memory the parking budget already gave up.

The thread runs at the lowest CPU priority (Linux: nice 19 for this thread alone):
checksumming and writing a few megabytes per parked state would otherwise take a core
from llama.cpp's threads in the very step that parked it, the first step of a burst.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import OrderedDict

from llamaql.engine.local.kv_files import KVFileStore
from llamaql.engine.local.parking import ParkedState
from llamaql.ports.engine import Requester

logger = logging.getLogger(__name__)

PENDING_LIMIT = 256 * 1024 * 1024
_DELETE = None  # the pending operation that deletes a file


class KVFileWriter:
    """A `KVFileStore` behind one writer thread; `close()` writes what waits, then stops."""

    def __init__(self, store: KVFileStore, *, pending_limit: int = PENDING_LIMIT) -> None:
        self.store = store
        self._pending_limit = pending_limit
        self._pending: OrderedDict[Requester, ParkedState | None] = OrderedDict()
        self._pending_bytes = 0
        self._current: tuple[Requester, ParkedState | None] | None = None
        self._closing = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="llamaql-kv-writer", daemon=True)
        self._thread.start()

    def put(self, owner: Requester, parked: ParkedState, *, wait: bool = False) -> bool:
        """Queue `owner`'s state for writing; False when the queue is full (with `wait`,
        wait for room instead) or the writer is closed."""
        with self._changed:
            if wait:
                self._changed.wait_for(lambda: self._closing or self._room_for(owner, parked))
            if self._closing or not self._room_for(owner, parked):
                return False
            self._replace(owner, parked)
            return True

    def delete(self, owner: Requester) -> None:
        """Queue the deletion of `owner`'s file (after any write queued before it); once
        closed, delete it at once."""
        with self._changed:
            if not self._closing:
                self._replace(owner, _DELETE)
                return
        self.store.delete(owner)

    def load(self, owner: Requester) -> ParkedState | None:
        """`owner`'s newest state: waiting to be written, being written, else on disk."""
        with self._changed:
            if owner in self._pending:
                return self._pending[owner]  # None: a delete waits
            if self._current is not None and self._current[0] == owner:
                return self._current[1]
        return self.store.read(owner)

    def flush(self) -> None:
        """Wait until everything queued so far is on disk (or deleted)."""
        with self._changed:
            self._changed.wait_for(lambda: not self._pending and self._current is None)

    def close(self) -> None:
        """Write what waits, then stop the thread; later puts and deletes are refused."""
        self.flush()
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join()

    def _room_for(self, owner: Requester, parked: ParkedState) -> bool:
        replaced = self._pending.get(owner)
        held = self._pending_bytes - (replaced.nbytes if replaced is not None else 0)
        return held == 0 or held + parked.nbytes <= self._pending_limit

    def _replace(self, owner: Requester, op: ParkedState | None) -> None:
        old = self._pending.pop(owner, _DELETE)
        if old is not None:
            self._pending_bytes -= old.nbytes
        self._pending[owner] = op
        if op is not None:
            self._pending_bytes += op.nbytes
        self._changed.notify_all()

    def _run(self) -> None:
        lower_this_threads_priority()
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._closing or bool(self._pending))
                if not self._pending:
                    return  # closing, and nothing waits
                owner, op = self._pending.popitem(last=False)
                if op is not None:
                    self._pending_bytes -= op.nbytes
                self._current = (owner, op)
            try:
                if op is None:
                    self.store.delete(owner)
                else:
                    self.store.write(owner, op)
            except Exception:  # a bug: log it, keep the thread for the next file
                logger.exception("KV file operation failed")
            finally:
                with self._changed:
                    self._current = None
                    self._changed.notify_all()


LOWEST_PRIORITY = 19


def lower_this_threads_priority() -> bool:
    """Give the calling thread the lowest CPU priority, on Linux only (where the nice
    value is per thread; elsewhere it would be the whole process's); False when not."""
    if sys.platform != "linux":
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)
    except OSError:
        logger.debug("could not lower the KV writer's priority", exc_info=True)
        return False
    return True
