"""The real ModelRuntime: llama.cpp through llama-cpp-python's low-level bindings.

The high-level `Llama` class is not used: it hides `use_extra_bufts` (needed off on AMX
CPUs, see FINDINGS), cannot stop between prompt batches, and keeps mutable Python state
that its tokenizer methods share with generation. Here the worker thread owns the context;
tokenizing reads only the vocabulary, which llama.cpp never mutates after loading.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable, Sequence

import llama_cpp

from llamaql.engine.devices import describe_cpu, list_devices, offload_devices
from llamaql.engine.kv_state import restore_sequence, save_sequence
from llamaql.engine.options import ResolvedOptions
from llamaql.engine.prompt_cache import PromptCache, common_prefix
from llamaql.engine.runtime import LoadConfig, RuntimeFacts
from llamaql.engine.types import EngineError, ModelFileError

logger = logging.getLogger(__name__)
_native_logger = logging.getLogger("llamaql.engine.llama_cpp")
# ggml_log_level (NONE, DEBUG, INFO, WARN, ERROR, CONT) -> logging; INFO is chatty: DEBUG.
_LEVELS = {1: logging.DEBUG, 2: logging.DEBUG, 3: logging.WARNING, 4: logging.ERROR}
_PENALTY_LAST_N = 64
_ALL_LAYERS = 0x7FFFFFFF
# Tokens a snapshot must save over the context's own prefix to be worth a restore, and
# tokens the context must be about to drop to be worth a snapshot: copying the KV state
# costs far less than evaluating this many tokens.
_MIN_GAIN = 32


@llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
def _log_to_python(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    message = text.decode("utf-8", errors="replace").rstrip()
    if message:
        _native_logger.log(_LEVELS.get(level, logging.DEBUG), "%s", message)


class LlamaSampler:
    """A llama.cpp sampler chain built from one request's options."""

    def __init__(self, ctx: object, n_vocab: int, options: ResolvedOptions) -> None:
        self._ctx = ctx
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())

        def add(sampler: object) -> None:
            llama_cpp.llama_sampler_chain_add(chain, sampler)

        if options.repeat_penalty != 1.0:
            add(
                llama_cpp.llama_sampler_init_penalties(
                    n_vocab, _PENALTY_LAST_N, options.repeat_penalty, 0.0, 0.0
                )
            )
        if options.temperature <= 0.0:
            add(llama_cpp.llama_sampler_init_greedy())
        else:
            if options.top_k > 0:
                add(llama_cpp.llama_sampler_init_top_k(options.top_k))
            add(llama_cpp.llama_sampler_init_top_p(options.top_p, 1))
            add(llama_cpp.llama_sampler_init_min_p(options.min_p, 1))
            add(llama_cpp.llama_sampler_init_temp(options.temperature))
            seed = llama_cpp.LLAMA_DEFAULT_SEED if options.seed is None else options.seed
            add(llama_cpp.llama_sampler_init_dist(seed))
        self._chain = chain

    def sample(self) -> int:
        # Samples from the last output of the latest decode and accepts the token
        # (which feeds the repetition penalty's history).
        return int(llama_cpp.llama_sampler_sample(self._chain, self._ctx, -1))

    def close(self) -> None:
        if self._chain is not None:
            llama_cpp.llama_sampler_free(self._chain)
            self._chain = None


class LlamaRuntime:
    """A GGUF model and one llama.cpp context; see ModelRuntime for the threading rules."""

    def __init__(self, config: LoadConfig) -> None:
        llama_cpp.llama_log_set(_log_to_python, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
        self._alive = threading.Lock()  # held by vocabulary readers and by close()
        devices = list_devices()
        gpus = offload_devices(devices)
        gpu_layers = config.gpu_layers if gpus else 0
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = _ALL_LAYERS if gpu_layers < 0 else gpu_layers
        mparams.use_extra_bufts = config.use_extra_bufts
        model = llama_cpp.llama_model_load_from_file(str(config.model_path).encode(), mparams)
        if not model:
            raise ModelFileError(f"llama.cpp could not load {config.model_path}")
        self._model = model
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = config.context_size
        cparams.n_batch = cparams.n_ubatch = min(config.batch_size, config.context_size)
        cparams.n_threads = cparams.n_threads_batch = config.threads
        cparams.no_perf = True
        ctx = llama_cpp.llama_init_from_model(model, cparams)
        if not ctx:
            llama_cpp.llama_model_free(model)
            raise EngineError(f"llama.cpp could not create a {config.context_size}-token context")
        self._ctx = ctx
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._batch_size = int(cparams.n_batch)
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        self._bos_text = self._piece(llama_cpp.llama_vocab_bos(self._vocab), special=True)
        self._tokens: list[int] = []  # what the context's KV memory holds, in order
        self._snapshots = (
            PromptCache(config.prompt_cache_bytes) if config.prompt_cache_bytes > 0 else None
        )
        layers = llama_cpp.llama_model_n_layer(model) + 1  # + the output layer
        offloaded = min(layers, _ALL_LAYERS if gpu_layers < 0 else gpu_layers)
        self.facts = RuntimeFacts(
            context_size=int(llama_cpp.llama_n_ctx(ctx)),
            backend="vulkan" if offloaded > 0 else "cpu",
            device=", ".join(g.description for g in gpus)
            if offloaded > 0
            else describe_cpu(devices),
            gpu_layers=offloaded,
            threads=config.threads,
        )

    @property
    def cached_tokens(self) -> int:
        return len(self._tokens)

    def tokenize(self, text: str) -> list[int]:
        data = text.encode("utf-8")
        # A template that writes the BOS text itself must not get a second BOS.
        add_bos = self._add_bos and not (self._bos_text and data.startswith(self._bos_text))
        with self._alive:
            self._check_open()
            size = len(data) + 2
            for _ in range(2):
                buf = (llama_cpp.llama_token * size)()
                n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, size, add_bos, True)
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
        if self._ctx is None:
            raise EngineError("the model is closed")

    def evaluate(self, tokens: Sequence[int], cancelled: Callable[[], bool]) -> int | None:
        self._check_open()
        keep = common_prefix(self._tokens, tokens)
        if self._snapshots is not None:
            keep = self._switch_to_best_snapshot(self._snapshots, tokens, keep)
        keep = min(keep, len(tokens) - 1)  # the last prompt token must be decoded for logits
        if keep < len(self._tokens):
            memory = llama_cpp.llama_get_memory(self._ctx)
            if not llama_cpp.llama_memory_seq_rm(memory, 0, keep, -1):
                llama_cpp.llama_memory_clear(memory, True)
                keep = 0
            del self._tokens[keep:]
        for start in range(keep, len(tokens), self._batch_size):
            if cancelled():
                return None
            self._decode(tokens[start : start + self._batch_size])
        # GPU backends decode asynchronously: wait, so prompt time is not billed to the
        # first generated token.
        llama_cpp.llama_synchronize(self._ctx)
        return keep

    def _switch_to_best_snapshot(
        self, snapshots: PromptCache, tokens: Sequence[int], keep: int
    ) -> int:
        """Snapshot the context before it drops much of what it holds, and restore the
        snapshot sharing a clearly longer prefix with `tokens`, if one is kept; return the
        prefix the context then shares with `tokens`."""
        match = snapshots.best_match(tokens)
        if len(self._tokens) - keep >= _MIN_GAIN and not snapshots.covers(self._tokens):
            snapshot = save_sequence(self._ctx, self._tokens)
            if snapshot is not None and not snapshots.put(snapshot):
                logger.debug("a %d-byte KV snapshot exceeds the prompt cache", snapshot.nbytes)
        if match is None or match[1] < keep + _MIN_GAIN:
            return keep
        best, shared = match
        self._tokens.clear()
        if not restore_sequence(self._ctx, best):
            snapshots.discard(best)
            return 0
        self._tokens.extend(best.tokens)
        snapshots.touch(best)
        logger.debug("restored a %d-token KV snapshot sharing %d tokens", len(best.tokens), shared)
        return shared

    def append(self, token: int) -> None:
        self._check_open()
        self._decode([token])

    def _decode(self, tokens: Sequence[int]) -> None:
        if len(self._tokens) + len(tokens) > self.facts.context_size:
            raise EngineError("the context is full")
        array = (llama_cpp.llama_token * len(tokens))(*tokens)
        status = llama_cpp.llama_decode(
            self._ctx, llama_cpp.llama_batch_get_one(array, len(tokens))
        )
        if status != 0:
            self.reset()
            raise EngineError(f"llama_decode failed with status {status}")
        self._tokens.extend(tokens)

    def new_sampler(self, options: ResolvedOptions) -> LlamaSampler:
        self._check_open()
        return LlamaSampler(self._ctx, self._n_vocab, options)

    def reset(self) -> None:
        if self._ctx is not None:
            llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self._ctx), True)
        self._tokens.clear()

    def close(self) -> None:
        with self._alive:
            if self._ctx is not None:
                llama_cpp.llama_free(self._ctx)
                self._ctx = None
                llama_cpp.llama_model_free(self._model)
                self._model = None
                if self._snapshots is not None:
                    self._snapshots.clear()
