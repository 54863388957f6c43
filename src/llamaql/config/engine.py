"""Settings of the inference engine: how many replies decode together and how many wait,
how often a stream sends its text, the context size, and (the in-process llama.cpp
engine only) the model file, threads, offload, batch and where KV states are kept."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, field_validator

from llamaql.config.base import EnvConfig

DEFAULT_MODEL_DIR = Path("models")
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MAX_CONTEXT_SIZE = 32768


class EngineConfig(EnvConfig):
    """`LLAMAQL_PARALLEL`, `LLAMAQL_QUEUE_SIZE`, `LLAMAQL_STREAM_INTERVAL_MS` and
    `LLAMAQL_CONTEXT_SIZE` (or `CONTEXT_SIZE`) for either engine; the model's
    `LLAMAQL_MODEL_PATH` (or `MODEL_FILE_NAME`), `LLAMAQL_N_*`, `LLAMAQL_USE_EXTRA_BUFTS`,
    `LLAMAQL_PROMPT_CACHE_MB` and `LLAMAQL_KV_*` for the in-process one."""

    models_dir: Path = Field(
        DEFAULT_MODEL_DIR,
        validation_alias=AliasChoices("LLAMAQL_MODELS_DIR"),
        description="Folder of GGUF models: every *.gguf under it is a model, named by its "
        "file stem",
    )
    model: str | None = Field(
        None,
        validation_alias=AliasChoices("LLAMAQL_MODEL"),
        description="The default model's name (a file stem in LLAMAQL_MODELS_DIR); default: "
        "the model of LLAMAQL_MODEL_PATH",
    )
    max_loaded_models: int = Field(
        2,
        ge=1,
        le=64,
        validation_alias=AliasChoices("LLAMAQL_MAX_LOADED_MODELS"),
        description="Models loaded at once; loading another unloads the least recently used "
        "idle one",
    )
    model_memory_mb: int | None = Field(
        None,
        ge=1,
        validation_alias=AliasChoices("LLAMAQL_MODEL_MEMORY_MB"),
        description="Memory (MiB) the loaded models' weights and KV may take together, "
        "estimated from the files before loading; default: no limit",
    )
    model_idle_seconds: float = Field(
        600.0,
        ge=0,
        validation_alias=AliasChoices("LLAMAQL_MODEL_IDLE_SECONDS"),
        description="A loaded model with no live or queued reply for this long is unloaded; "
        "0 = never",
    )
    model_path: Path = Field(
        DEFAULT_MODEL_DIR / DEFAULT_MODEL_FILE,
        validation_alias=AliasChoices("LLAMAQL_MODEL_PATH", "MODEL_FILE_NAME"),
        description="GGUF file; a bare file name is looked up in ./models",
    )
    context_size: int | None = Field(
        None,
        ge=64,
        le=MAX_CONTEXT_SIZE,
        validation_alias=AliasChoices("LLAMAQL_CONTEXT_SIZE", "CONTEXT_SIZE"),
        description="Tokens of context; default: the model's trained context, capped at 32768",
    )
    n_gpu_layers: int | None = Field(
        None,
        ge=-1,
        validation_alias=AliasChoices("LLAMAQL_N_GPU_LAYERS"),
        description="Layers to offload; default: all with a GPU backend, else 0; -1 = all",
    )
    n_threads: int | None = Field(
        None,
        ge=1,
        le=1024,
        validation_alias=AliasChoices("LLAMAQL_N_THREADS"),
        description="CPU threads for llama.cpp; default: all usable cores",
    )
    decode_lanes: int = Field(
        1,
        ge=1,
        le=64,
        validation_alias=AliasChoices("LLAMAQL_DECODE_LANES"),
        description="Independent llama.cpp contexts a model's LLAMAQL_PARALLEL sequences are "
        "split over evenly, each with its own scheduler thread and its share of the CPU "
        "threads (for a small model on a few cores)",
    )
    n_batch: int = Field(512, ge=1, le=8192, validation_alias=AliasChoices("LLAMAQL_N_BATCH"))
    use_extra_bufts: bool = Field(
        False,
        validation_alias=AliasChoices("LLAMAQL_USE_EXTRA_BUFTS"),
        description="llama.cpp extra (repacking) buffer types; off: they crash on AMX CPUs",
    )
    parallel: int = Field(
        4,
        ge=1,
        le=256,
        validation_alias=AliasChoices("LLAMAQL_PARALLEL"),
        description="Replies decoded together in one batch; each holds a KV sequence of "
        "LLAMAQL_CONTEXT_SIZE tokens, so KV memory grows with it",
    )
    prompt_cache_mb: int = Field(
        256,
        ge=0,
        le=1024 * 1024,
        validation_alias=AliasChoices("LLAMAQL_PROMPT_CACHE_MB"),
        description="Host memory (MiB) for the KV state of conversations whose sequence "
        "went to another, so their next turn does not re-evaluate the history; 0 = off",
    )
    kv_dir: Path = Field(
        Path(".kv"),
        validation_alias=AliasChoices("LLAMAQL_KV_DIR"),
        description="Folder for conversations' KV states on disk, so a conversation's next "
        "turn after a restart evaluates only its new tokens (relative: to the working "
        "directory)",
    )
    kv_disk_mb: int = Field(
        2048,
        ge=0,
        le=1024 * 1024 * 1024,
        validation_alias=AliasChoices("LLAMAQL_KV_DISK_MB"),
        description="Disk (MiB) the KV files in LLAMAQL_KV_DIR may take; least recently "
        "used go first; 0 = off",
    )
    stream_interval_ms: int = Field(
        50,
        ge=0,
        le=5000,
        validation_alias=AliasChoices("LLAMAQL_STREAM_INTERVAL_MS"),
        description="After a reply's first text, at most one TokenDelta per this many "
        "milliseconds, carrying all the text since the previous one (a stream slower than "
        "two tokens per interval waits for a second token or twice the interval); "
        "0 = as produced",
    )
    queue_size: int = Field(
        8,
        ge=1,
        le=10000,
        validation_alias=AliasChoices("LLAMAQL_QUEUE_SIZE"),
        description="Generation requests that may wait for the model before QUEUE_FULL",
    )

    @field_validator("model_path")
    @classmethod
    def _bare_name_in_models(cls, value: Path) -> Path:
        if value.parent == Path(".") and not value.exists():
            return DEFAULT_MODEL_DIR / value
        return value
