"""The real ModelRuntime: llama.cpp through llama-cpp-python's low-level bindings.

The high-level `Llama` class is not used: it hides `use_extra_bufts` (needed off on AMX
CPUs, see FINDINGS), decodes one sequence at a time, and keeps mutable Python state that
its tokenizer methods share with generation. Here the model's `sequences` separate KV
streams (not unified: attention stays per sequence) of `context_size` tokens each are held
by one context, or on the CPU by one context per decode lane (lanes.py); the scheduler's
thread owns them, and tokenizing reads only the vocabulary, which llama.cpp never mutates
after loading.
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
from llamaql.engine.local.lanes import DecodeLanes, lane_sizes
from llamaql.engine.local.llama_context import LlamaContext, LlamaSampler
from llamaql.engine.local.runtime import BatchPart, LoadConfig, RuntimeFacts
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
    """A GGUF model and its sequences in one llama.cpp context, or split over several
    decoding at once on the CPU (`config.lanes`, see lanes.py); see ModelRuntime."""

    def __init__(self, config: LoadConfig) -> None:
        devices = list_devices()
        gpus = offload_devices(devices)
        gpu_layers = config.gpu_layers if gpus else 0
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = _ALL_LAYERS if gpu_layers < 0 else gpu_layers
        mparams.use_extra_bufts = config.use_extra_bufts
        super().__init__(config.model_path, mparams)
        model = self._model
        layers = llama_cpp.llama_model_n_layer(model) + 1  # + the output layer
        offloaded = min(layers, _ALL_LAYERS if gpu_layers < 0 else gpu_layers)
        # Lanes are for CPU threads; a GPU decodes a whole batch in one context.
        sizes = lane_sizes(config.sequences, config.lanes if offloaded == 0 else 1)
        contexts: list[LlamaContext] = []
        try:
            for size in sizes:
                contexts.append(
                    LlamaContext(
                        model,
                        context_size=config.context_size,
                        sequences=size,
                        batch_size=config.batch_size,
                        threads=config.threads,
                    )
                )
        except EngineError:
            for context in contexts:
                context.close()
            self._free()
            raise
        self._lanes: DecodeLanes[LlamaContext] | None = DecodeLanes(
            contexts, sizes[0], config.threads
        )
        first = contexts[0]
        n_ctx_seq = int(llama_cpp.llama_n_ctx_seq(first.ctx))
        cparams = first.params
        self.facts = RuntimeFacts(
            context_size=n_ctx_seq,
            sequences=config.sequences,
            batch_size=first.batch_size,
            backend="vulkan" if offloaded > 0 else "cpu",
            device=", ".join(g.description for g in gpus)
            if offloaded > 0
            else describe_cpu(devices),
            gpu_layers=offloaded,
            threads=config.threads,
            kv_bytes=sum(_kv_bytes(model, int(llama_cpp.llama_n_ctx(c.ctx))) for c in contexts),
            state_format=(
                f"llama-cpp-python {llama_cpp.__version__}; n_ctx_seq {n_ctx_seq}; n_stream "
                f"{sizes[0]}; type_k {cparams.type_k}; type_v {cparams.type_v}; flash_attn "
                f"{cparams.flash_attn_type}; kv_unified 0"
            ),
            lanes=len(contexts),
        )

    def _open_lanes(self) -> DecodeLanes[LlamaContext]:
        if self._lanes is None:
            raise EngineError("the model is closed")
        return self._lanes

    def _check_open(self) -> None:
        self._open_lanes()

    def decode(self, parts: Sequence[BatchPart]) -> int:
        return self._open_lanes().decode(parts)

    def set_threads(self, threads: int) -> None:
        """Decode on `threads` threads in all from the next decode on (the scheduler's
        thread, between decodes)."""
        self._open_lanes().threads = max(1, threads)

    def truncate(self, seq: int, keep: int) -> bool:
        context, local = self._open_lanes().lane(seq)
        return context.truncate(local, keep)

    def save(self, seq: int) -> bytearray | None:
        context, local = self._open_lanes().lane(seq)
        return context.save(local)

    def restore(self, seq: int, state: bytearray) -> bool:
        context, local = self._open_lanes().lane(seq)
        return context.restore(local, state)

    def new_sampler(self, options: ResolvedOptions) -> LlamaSampler:
        lanes = self._open_lanes()

        def locate(row: int) -> tuple[object, int]:
            context, local = lanes.locate(row)
            return context.ctx, local

        return LlamaSampler(locate, self._n_vocab, options)

    def close(self) -> None:
        with self._alive:
            if self._lanes is not None:
                self._lanes.close()
                for context in self._lanes.lanes:
                    context.close()
                self._lanes = None
                self._free()
