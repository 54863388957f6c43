"""Preparing prompts for a model that is not loaded: its vocabulary, chat template and
context read from the file alone (a model-per-conversation registry prepares a reply's
prompt while its model loads, or before it has to)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from llamaql.config import MAX_CONTEXT_SIZE, EngineConfig
from llamaql.engine.local.metadata import read_gguf_metadata
from llamaql.engine.local.runtime import Vocabulary
from llamaql.engine.local.templates import ChatTemplate, load_chat_template

VocabFactory = Callable[[Path], Vocabulary]


def context_size_for_file(config: EngineConfig, trained_context: int | None) -> int:
    """LLAMAQL_CONTEXT_SIZE, else the trained context (at most MAX_CONTEXT_SIZE)."""
    return config.context_size or min(trained_context or MAX_CONTEXT_SIZE, MAX_CONTEXT_SIZE)


class UnloadedEncoding:
    """The model file's tokenizer, template and context, read once on first use (from a
    worker thread: it blocks) and kept until `close`."""

    def __init__(self, config: EngineConfig, vocab_factory: VocabFactory) -> None:
        self._config = config
        self._vocab_factory = vocab_factory
        self._vocab: Vocabulary | None = None
        self._facts: tuple[ChatTemplate, int] | None = None
        self._lock = threading.Lock()

    def get(self) -> tuple[Callable[..., list[int]], ChatTemplate, int]:
        """(tokenize, template, context size)."""
        with self._lock:
            if self._vocab is None or self._facts is None:
                meta = read_gguf_metadata(self._config.model_path)
                template = load_chat_template(
                    meta.chat_template,
                    bos_token=meta.bos_token,
                    eos_token=meta.eos_token,
                    model_name=meta.name,
                )
                self._facts = (template, context_size_for_file(self._config, meta.trained_context))
                self._vocab = self._vocab_factory(self._config.model_path)
            template, context_size = self._facts
            return self._vocab.tokenize, template, context_size

    def close(self) -> None:
        """Free the vocabulary (blocking)."""
        with self._lock:
            vocab, self._vocab = self._vocab, None
        if vocab is not None:
            vocab.close()
