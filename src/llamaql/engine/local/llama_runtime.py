"""The real ModelRuntime: llama.cpp through llama-cpp-python's low-level bindings.

The high-level `Llama` class is not used: it hides `use_extra_bufts` (needed off on AMX
CPUs, see FINDINGS), decodes one sequence at a time, and keeps mutable Python state that
its tokenizer methods share with generation. Here one context holds `sequences` separate
KV streams (not unified: attention stays per sequence) of `context_size` tokens each; the
scheduler's thread owns it, and tokenizing reads only the vocabulary, which llama.cpp
never mutates after loading.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import llama_cpp

from llamaql.engine.local.devices import describe_cpu, list_devices, offload_devices
from llamaql.engine.local.runtime import BatchPart, LoadConfig, RuntimeFacts
from llamaql.engine.local.sampler import LlamaSampler
from llamaql.ports.engine import EngineError, ModelFileError, ResolvedOptions

logger = logging.getLogger(__name__)
_native_logger = logging.getLogger("llamaql.engine.llama_cpp")
# ggml_log_level (NONE, DEBUG, INFO, WARN, ERROR, CONT) -> logging; INFO is chatty: DEBUG.
_LEVELS = {1: logging.DEBUG, 2: logging.DEBUG, 3: logging.WARNING, 4: logging.ERROR}
_ALL_LAYERS = 0x7FFFFFFF
_F16_BYTES = 2


@llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
def _log_to_python(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    message = text.decode("utf-8", errors="replace").rstrip()
    if message:
        _native_logger.log(_LEVELS.get(level, logging.DEBUG), "%s", message)


def _kv_bytes(model: object, total_tokens: int) -> int:
    """About how much KV memory `total_tokens` cells take (f16 keys and values)."""
    heads = max(1, int(llama_cpp.llama_model_n_head(model)))
    kv_heads = int(llama_cpp.llama_model_n_head_kv(model))
    kv_width = int(llama_cpp.llama_model_n_embd(model)) // heads * kv_heads
    layers = int(llama_cpp.llama_model_n_layer(model))
    return layers * total_tokens * 2 * kv_width * _F16_BYTES


class LlamaVocab:
    """A GGUF model's vocabulary: tokenizing and token texts. Alone (`vocab_only`), it
    loads no weights: the registry prepares prompts for a model before loading it."""

    def __init__(self, path: Path, mparams: Any = None) -> None:
        llama_cpp.llama_log_set(_log_to_python, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
        self._alive = threading.Lock()  # held by vocabulary readers and by close()
        if mparams is None:
            mparams = llama_cpp.llama_model_default_params()
            mparams.vocab_only = True
        model = llama_cpp.llama_model_load_from_file(str(path).encode(), mparams)
        if not model:
            raise ModelFileError(f"llama.cpp could not load {path}")
        self._model = model
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        self._bos_text = self._piece(llama_cpp.llama_vocab_bos(self._vocab), special=True)

    def tokenize(self, text: str, special: bool = True, first: bool = True) -> list[int]:
        data = text.encode("utf-8")
        # A template that writes the BOS text itself must not get a second BOS.
        add_bos = (
            first and self._add_bos and not (self._bos_text and data.startswith(self._bos_text))
        )
        with self._alive:
            self._check_open()
            size = len(data) + 2
            for _ in range(2):
                buf = (llama_cpp.llama_token * size)()
                n = llama_cpp.llama_tokenize(
                    self._vocab, data, len(data), buf, size, add_bos, special
                )
                if n >= 0:
                    return list(buf[:n])
                size = -n
        raise EngineError("tokenizer failed")

    def token_bytes(self, token: int) -> bytes:
        with self._alive:
            self._check_open()
            return self._piece(token, special=False)

    def is_eog(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def _piece(self, token: int, *, special: bool) -> bytes:
        if token < 0:
            return b""
        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, 64, 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, -n, 0, special)
        return buf.raw[:n]

    def _check_open(self) -> None:
        if self._model is None:
            raise EngineError("the model is closed")

    def close(self) -> None:
        with self._alive:
            self._free()

    def _free(self) -> None:
        if self._model is not None:
            llama_cpp.llama_model_free(self._model)
            self._model = None


class LlamaRuntime(LlamaVocab):
    """A GGUF model and one llama.cpp context of several sequences; see ModelRuntime."""

    def __init__(self, config: LoadConfig) -> None:
        devices = list_devices()
        gpus = offload_devices(devices)
        gpu_layers = config.gpu_layers if gpus else 0
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = _ALL_LAYERS if gpu_layers < 0 else gpu_layers
        mparams.use_extra_bufts = config.use_extra_bufts
        super().__init__(config.model_path, mparams)
        model = self._model
        total = config.context_size * config.sequences
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = total
        cparams.n_seq_max = config.sequences
        cparams.kv_unified = False
        cparams.n_batch = cparams.n_ubatch = min(config.batch_size, total)
        cparams.n_threads = cparams.n_threads_batch = config.threads
        cparams.no_perf = True
        ctx = llama_cpp.llama_init_from_model(model, cparams)
        if not ctx:
            self._free()
            raise EngineError(
                f"llama.cpp could not create a context of {config.sequences} sequences of "
                f"{config.context_size} tokens"
            )
        self._ctx = ctx
        self._memory = llama_cpp.llama_get_memory(ctx)
        self._batch_size = int(cparams.n_batch)
        self._batch = llama_cpp.llama_batch_init(self._batch_size, 0, 1)
        layers = llama_cpp.llama_model_n_layer(model) + 1  # + the output layer
        offloaded = min(layers, _ALL_LAYERS if gpu_layers < 0 else gpu_layers)
        sequences = int(llama_cpp.llama_n_seq_max(ctx))
        self.facts = RuntimeFacts(
            context_size=int(llama_cpp.llama_n_ctx_seq(ctx)),
            sequences=sequences,
            batch_size=self._batch_size,
            backend="vulkan" if offloaded > 0 else "cpu",
            device=", ".join(g.description for g in gpus)
            if offloaded > 0
            else describe_cpu(devices),
            gpu_layers=offloaded,
            threads=config.threads,
            kv_bytes=_kv_bytes(model, int(llama_cpp.llama_n_ctx(ctx))),
            state_format=(
                f"llama-cpp-python {llama_cpp.__version__}; n_ctx_seq "
                f"{llama_cpp.llama_n_ctx_seq(ctx)}; n_seq {sequences}; type_k "
                f"{cparams.type_k}; type_v {cparams.type_v}; flash_attn "
                f"{cparams.flash_attn_type}; kv_unified 0"
            ),
        )

    def _check_open(self) -> None:
        if self._ctx is None:
            raise EngineError("the model is closed")

    def decode(self, parts: Sequence[BatchPart]) -> int:
        self._check_open()
        batch = self._batch
        tokens, positions, seq_ids, logits = batch.token, batch.pos, batch.seq_id, batch.logits
        n_seq_id = batch.n_seq_id
        i = 0
        for part in parts:
            if i + len(part.tokens) > self._batch_size:
                raise EngineError(f"a batch of more than {self._batch_size} tokens")
            for offset, token in enumerate(part.tokens):
                tokens[i] = token
                positions[i] = part.pos + offset
                n_seq_id[i] = 1
                seq_ids[i][0] = part.seq
                logits[i] = 0
                i += 1
            if part.wants_logits:
                logits[i - 1] = 1
        batch.n_tokens = i
        status = int(llama_cpp.llama_decode(self._ctx, batch))
        if status == 0:
            # GPU backends decode asynchronously: wait, so the time is billed to this step.
            llama_cpp.llama_synchronize(self._ctx)
        return status

    def set_threads(self, threads: int) -> None:
        """Decode on `threads` threads from the next decode on (the scheduler's thread,
        between decodes)."""
        self._check_open()
        llama_cpp.llama_set_n_threads(self._ctx, threads, threads)

    def truncate(self, seq: int, keep: int) -> bool:
        self._check_open()
        return bool(llama_cpp.llama_memory_seq_rm(self._memory, seq, keep, -1))

    def save(self, seq: int) -> bytearray | None:
        self._check_open()
        size = int(llama_cpp.llama_state_seq_get_size(self._ctx, seq))
        state = bytearray(size)
        written = llama_cpp.llama_state_seq_get_data(
            self._ctx, (ctypes.c_uint8 * size).from_buffer(state), size, seq
        )
        if written != size:
            logger.warning("could not save sequence %d: %d of %d bytes written", seq, written, size)
            return None
        return state

    def restore(self, seq: int, state: bytearray) -> bool:
        self._check_open()
        # The sequence must be empty before a state is read into it.
        llama_cpp.llama_memory_seq_rm(self._memory, seq, -1, -1)
        size = len(state)
        read = llama_cpp.llama_state_seq_set_data(
            self._ctx, (ctypes.c_uint8 * size).from_buffer(state), size, seq
        )
        if read == 0:
            logger.warning("could not restore a %d-byte state into sequence %d", size, seq)
            llama_cpp.llama_memory_seq_rm(self._memory, seq, -1, -1)
            return False
        return True

    def new_sampler(self, options: ResolvedOptions) -> LlamaSampler:
        self._check_open()
        return LlamaSampler(self._ctx, self._n_vocab, options)

    def busy(self) -> None:
        pass  # its threads are its own

    def idle(self) -> None:
        pass

    def close(self) -> None:
        with self._alive:
            if self._ctx is not None:
                llama_cpp.llama_batch_free(self._batch)
                llama_cpp.llama_free(self._ctx)
                self._ctx = None
                self._free()
