"""Sampling options: defaults, and validation whose messages name the option and range.

The ranges are the shared vocabulary's (ports/values.py), so these checks, their messages and
the schema's descriptions say the same thing.
"""

from __future__ import annotations

import math

from llamaql.ports.engine import InvalidOptionsError, ResolvedOptions, SamplingOptions
from llamaql.ports.values import (
    MAX_STOP_CHARS,
    MAX_STOP_STRINGS,
    MAX_TOKENS_MIN,
    MIN_P_MAX,
    MIN_P_MIN,
    REPEAT_PENALTY_ABOVE,
    REPEAT_PENALTY_MAX,
    REPEAT_PENALTY_OFF,
    SEED_MAX,
    SEED_RANDOM,
    TEMPERATURE_MAX,
    TEMPERATURE_MIN,
    TOP_K_MAX,
    TOP_K_MIN,
    TOP_K_OFF,
    TOP_P_MAX,
    TOP_P_MIN,
)

# llama.cpp's own defaults (common/common.h), except repeat_penalty: 1.0 is "off" there too.
DEFAULT_TEMPERATURE = 0.8
DEFAULT_TOP_P = 0.95
DEFAULT_TOP_K = 40
DEFAULT_MIN_P = 0.05
DEFAULT_REPEAT_PENALTY = REPEAT_PENALTY_OFF
DEFAULT_MAX_TOKENS = 512  # of a reply that sets no max_tokens (at most half the context)
RANDOM_SEED = 0xFFFFFFFF  # llama.cpp's LLAMA_DEFAULT_SEED: pick a random seed


def _float_in(name: str, value: float | None, low: float, high: float, default: float) -> float:
    if value is None:
        return default
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidOptionsError(f"{name} must be between {low:g} and {high:g}, got {value!r}")
    return float(value)


def _stop_strings(stop: tuple[str, ...] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    if len(stop) > MAX_STOP_STRINGS:
        raise InvalidOptionsError(f"stop takes at most {MAX_STOP_STRINGS} strings, got {len(stop)}")
    for item in stop:
        if not isinstance(item, str) or not 1 <= len(item) <= MAX_STOP_CHARS:
            raise InvalidOptionsError(
                f"each stop string must be 1 to {MAX_STOP_CHARS} characters, got {item!r}"
            )
    return tuple(stop)


def _seed(seed: int | None) -> int | None:
    if seed is None or seed == SEED_RANDOM:
        return None
    if not 0 <= seed <= SEED_MAX:
        raise InvalidOptionsError(
            f"seed must be between 0 and {SEED_MAX} (or {SEED_RANDOM}), got {seed!r}"
        )
    # llama.cpp reads its default-seed value as "random"; keep a fixed seed fixed.
    return seed - 1 if seed == RANDOM_SEED else seed


def resolve_options(
    options: SamplingOptions, *, context_size: int, default_max_tokens: int = DEFAULT_MAX_TOKENS
) -> ResolvedOptions:
    """Validate and fill in defaults; InvalidOptionsError names the option and its range."""
    top_k = DEFAULT_TOP_K if options.top_k is None else options.top_k
    if not TOP_K_MIN <= top_k <= TOP_K_MAX:
        raise InvalidOptionsError(
            f"top_k must be between {TOP_K_MIN} and {TOP_K_MAX} ({TOP_K_OFF} = off), got {top_k!r}"
        )
    repeat_penalty = _float_in(
        "repeat_penalty",
        options.repeat_penalty,
        REPEAT_PENALTY_ABOVE,
        REPEAT_PENALTY_MAX,
        DEFAULT_REPEAT_PENALTY,
    )
    if repeat_penalty <= REPEAT_PENALTY_ABOVE:
        # llama.cpp divides logits by it; 1 turns it off.
        raise InvalidOptionsError(
            f"repeat_penalty must be greater than {REPEAT_PENALTY_ABOVE:g} and at most "
            f"{REPEAT_PENALTY_MAX:g} ({REPEAT_PENALTY_OFF:g} = off), got {repeat_penalty!r}"
        )
    max_tokens = options.max_tokens
    if max_tokens is None:
        max_tokens = max(MAX_TOKENS_MIN, min(default_max_tokens, context_size // 2))
    elif not MAX_TOKENS_MIN <= max_tokens <= context_size:
        raise InvalidOptionsError(
            f"max_tokens must be between {MAX_TOKENS_MIN} and {context_size}, got {max_tokens!r} "
            f"({context_size} is the context size)"
        )
    temperature = _float_in(
        "temperature", options.temperature, TEMPERATURE_MIN, TEMPERATURE_MAX, DEFAULT_TEMPERATURE
    )
    return ResolvedOptions(
        temperature=temperature,
        top_p=_float_in("top_p", options.top_p, TOP_P_MIN, TOP_P_MAX, DEFAULT_TOP_P),
        top_k=top_k,
        min_p=_float_in("min_p", options.min_p, MIN_P_MIN, MIN_P_MAX, DEFAULT_MIN_P),
        repeat_penalty=repeat_penalty,
        seed=_seed(options.seed),
        max_tokens=max_tokens,
        stop=_stop_strings(options.stop),
    )
