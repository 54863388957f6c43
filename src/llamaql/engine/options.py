"""Sampling options: defaults, and validation whose messages name the option and range."""

from __future__ import annotations

import math

from llamaql.engine.types import InvalidOptionsError, ResolvedOptions, SamplingOptions

# llama.cpp's own defaults (common/common.h), except repeat_penalty: 1.0 is "off" there too.
DEFAULT_TEMPERATURE = 0.8
DEFAULT_TOP_P = 0.95
DEFAULT_TOP_K = 40
DEFAULT_MIN_P = 0.05
DEFAULT_REPEAT_PENALTY = 1.0
MAX_STOP_STRINGS = 4
MAX_STOP_CHARS = 64
SEED_MAX = 2**32 - 1
RANDOM_SEED = 0xFFFFFFFF  # llama.cpp's LLAMA_DEFAULT_SEED: pick a random seed


def _float_in(name: str, value: float | None, low: float, high: float, default: float) -> float:
    if value is None:
        return default
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidOptionsError(f"{name} must be between {low:g} and {high:g}, got {value!r}")
    return float(value)


def _stop_strings(stop: tuple[str, ...]) -> tuple[str, ...]:
    if len(stop) > MAX_STOP_STRINGS:
        raise InvalidOptionsError(f"stop takes at most {MAX_STOP_STRINGS} strings, got {len(stop)}")
    for item in stop:
        if not isinstance(item, str) or not 1 <= len(item) <= MAX_STOP_CHARS:
            raise InvalidOptionsError(
                f"each stop string must be 1 to {MAX_STOP_CHARS} characters, got {item!r}"
            )
    return tuple(stop)


def _seed(seed: int | None) -> int | None:
    if seed is None or seed == -1:
        return None
    if not 0 <= seed <= SEED_MAX:
        raise InvalidOptionsError(f"seed must be between 0 and {SEED_MAX} (or -1), got {seed!r}")
    # llama.cpp reads its default-seed value as "random"; keep a fixed seed fixed.
    return seed - 1 if seed == RANDOM_SEED else seed


def resolve_options(
    options: SamplingOptions, *, context_size: int, default_max_tokens: int
) -> ResolvedOptions:
    """Validate and fill in defaults; InvalidOptionsError names the option and its range."""
    top_k = DEFAULT_TOP_K if options.top_k is None else options.top_k
    if not 0 <= top_k <= 1000:
        raise InvalidOptionsError(f"top_k must be between 0 and 1000 (0 = off), got {top_k!r}")
    repeat_penalty = _float_in(
        "repeat_penalty", options.repeat_penalty, 0.0, 2.0, DEFAULT_REPEAT_PENALTY
    )
    if repeat_penalty <= 0.0:
        # llama.cpp divides logits by it; 1 turns it off.
        raise InvalidOptionsError(
            f"repeat_penalty must be greater than 0 and at most 2 (1 = off), got {repeat_penalty!r}"
        )
    max_tokens = options.max_tokens
    if max_tokens is None:
        max_tokens = max(1, min(default_max_tokens, context_size // 2))
    elif not 1 <= max_tokens <= context_size:
        raise InvalidOptionsError(
            f"max_tokens must be between 1 and {context_size}, got {max_tokens!r} "
            f"({context_size} is the context size)"
        )
    return ResolvedOptions(
        temperature=_float_in("temperature", options.temperature, 0.0, 2.0, DEFAULT_TEMPERATURE),
        top_p=_float_in("top_p", options.top_p, 0.0, 1.0, DEFAULT_TOP_P),
        top_k=top_k,
        min_p=_float_in("min_p", options.min_p, 0.0, 1.0, DEFAULT_MIN_P),
        repeat_penalty=repeat_penalty,
        seed=_seed(options.seed),
        max_tokens=max_tokens,
        stop=_stop_strings(options.stop),
    )
