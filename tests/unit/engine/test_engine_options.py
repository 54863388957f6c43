"""Option validation names the option and its range; defaults fill the rest."""

from __future__ import annotations

from typing import Any

import pytest

from llamaql.ports.engine import InvalidOptionsError, ResolvedOptions, SamplingOptions
from llamaql.ports.options import DEFAULT_TEMPERATURE, resolve_options


def resolve(**options: Any) -> ResolvedOptions:
    return resolve_options(
        SamplingOptions(**options),
        context_size=2048,
        default_max_tokens=512,
    )


def test_defaults() -> None:
    resolved = resolve_options(SamplingOptions(), context_size=512, default_max_tokens=512)
    assert resolved.temperature == DEFAULT_TEMPERATURE
    assert resolved.seed is None
    assert resolved.max_tokens == 256  # at most half the context by default
    assert resolved.stop == ()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temperature": 2.5}, "temperature must be between 0 and 2, got 2.5"),
        ({"temperature": float("nan")}, "temperature must be between 0 and 2"),
        ({"top_p": -0.1}, "top_p must be between 0 and 1"),
        ({"min_p": 1.5}, "min_p must be between 0 and 1"),
        ({"top_k": -1}, "top_k must be between 0 and 1000"),
        ({"repeat_penalty": 0.0}, "repeat_penalty must be greater than 0 and at most 2"),
        ({"repeat_penalty": 3.0}, "repeat_penalty must be between 0 and 2"),
        ({"seed": -2}, "seed must be between 0 and 4294967295"),
        ({"max_tokens": 0}, "max_tokens must be between 1 and 2048"),
        ({"max_tokens": 4096}, "max_tokens must be between 1 and 2048"),
        ({"stop": ("a", "b", "c", "d", "e")}, "stop takes at most 4 strings"),
        ({"stop": ("",)}, "each stop string must be 1 to 64 characters"),
    ],
)
def test_bad_values_name_the_option_and_range(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidOptionsError, match=message.replace("(", r"\(")):
        resolve(**options)


def test_seed_minus_one_is_random_and_top_seed_stays_fixed() -> None:
    assert resolve(seed=-1).seed is None
    assert resolve(seed=2**32 - 1).seed == 2**32 - 2
    assert resolve(seed=7).seed == 7
