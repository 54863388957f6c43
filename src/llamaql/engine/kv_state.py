"""Copying sequence 0's KV state between a llama.cpp context and host memory."""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Sequence

import llama_cpp

from llamaql.engine.prompt_cache import Snapshot

logger = logging.getLogger(__name__)
_SEQ = 0  # the runtime decodes everything into sequence 0 (llama_batch_get_one)


def save_sequence(ctx: object, tokens: Sequence[int]) -> Snapshot | None:
    """A host copy of what the context holds for `tokens`; None when llama.cpp fails."""
    size = int(llama_cpp.llama_state_seq_get_size(ctx, _SEQ))
    state = bytearray(size)
    written = llama_cpp.llama_state_seq_get_data(
        ctx, (ctypes.c_uint8 * size).from_buffer(state), size, _SEQ
    )
    if written != size:
        logger.warning("could not snapshot the KV state: %d of %d bytes written", written, size)
        return None
    return Snapshot(tuple(tokens), state)


def restore_sequence(ctx: object, snapshot: Snapshot) -> bool:
    """Replace the context's sequence with `snapshot`; on failure the sequence is empty."""
    memory = llama_cpp.llama_get_memory(ctx)
    # The sequence must be empty before its state is read back in.
    llama_cpp.llama_memory_seq_rm(memory, _SEQ, -1, -1)
    size = snapshot.nbytes
    read = llama_cpp.llama_state_seq_set_data(
        ctx, (ctypes.c_uint8 * size).from_buffer(snapshot.state), size, _SEQ
    )
    if read == 0:
        logger.warning("could not restore a %d-token KV snapshot", len(snapshot.tokens))
        llama_cpp.llama_memory_seq_rm(memory, _SEQ, -1, -1)
        return False
    return True
