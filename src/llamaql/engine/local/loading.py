"""How a model is loaded: the settings with their defaults resolved from the model and the
machine (`LoadConfig`), the decode lanes its sequences are split over, and the llama.cpp
runtimes that share the CPU's threads."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from llamaql.config import EngineConfig
from llamaql.engine.local.core_share import CoreShare, SharedCoresRuntime
from llamaql.engine.local.metadata import GgufMetadata
from llamaql.engine.local.runtime import LoadConfig, ModelRuntime
from llamaql.engine.local.unloaded import context_size_for_file

logger = logging.getLogger(__name__)
RuntimeFactory = Callable[[LoadConfig], ModelRuntime]


def llama_runtimes(cores: CoreShare) -> RuntimeFactory:
    """llama.cpp runtimes that decode on their share of `cores` (a runtime per decode
    lane, and per loaded model, each counting as one decoding)."""

    def make(config: LoadConfig) -> ModelRuntime:
        from llamaql.engine.local.llama_runtime import LlamaRuntime  # llama.cpp, lazily

        return SharedCoresRuntime(LlamaRuntime(config), cores)

    return make


def _gpu_offload_supported() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def resolve_load_config(config: EngineConfig, meta: GgufMetadata) -> LoadConfig:
    """Settings with their documented defaults filled in from the model and the machine."""
    gpu_layers = config.n_gpu_layers
    if gpu_layers is None:
        gpu_layers = -1 if _gpu_offload_supported() else 0
    return LoadConfig(
        model_path=config.model_path,
        context_size=context_size_for(config, meta),
        sequences=config.parallel,
        gpu_layers=gpu_layers,
        threads=config.n_threads or len(os.sched_getaffinity(0)),
        batch_size=config.n_batch,
        use_extra_bufts=config.use_extra_bufts,
    )


def decode_lanes(config: EngineConfig, load: LoadConfig) -> int:
    """LLAMAQL_DECODE_LANES, at most one lane per sequence, and 1 when the sequences do
    not split evenly (a sequence's state moves between lanes only between contexts of
    as many sequences).

    Why lanes: on a few cores a small model's step is short, and llama.cpp's threads
    spend a good part of it at their barriers; two contexts on a thread each, stepping
    on their own, never wait for each other. A lane decoding alone gets every thread
    (core_share.py). On 2 cores, the engine alone (`python -m bench.lanes`) gave 1.13x
    the total tok/s of one context with 4 and 8 replies at once, its slowest first token
    7-13 % later; through the server (`python -m bench peer`) llamaql's tok/s did not
    move, so one context stays the default (bench/results/README.md). A large model's
    step is bound by reading its weights, which each lane does for itself."""
    lanes = min(config.decode_lanes, load.sequences)
    if load.sequences % lanes:
        logger.warning(
            "LLAMAQL_DECODE_LANES=%d does not divide LLAMAQL_PARALLEL=%d: one lane",
            lanes,
            load.sequences,
        )
        return 1
    return lanes


def context_size_for(config: EngineConfig, meta: GgufMetadata) -> int:
    """The context llamaql gives a model: LLAMAQL_CONTEXT_SIZE, else its trained context
    (at most MAX_CONTEXT_SIZE)."""
    return context_size_for_file(config, meta.trained_context)
