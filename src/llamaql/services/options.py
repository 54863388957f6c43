"""Generation options: validation shared by conversations (defaults) and chat (per message).

Options arrive as a mapping with snake_case keys (values.OPTION_KEYS); None values mean
"not set" and are dropped. Checked, they become the shared `SamplingOptions` value, which
conversations store as their defaults and the engine resolves.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import isfinite
from typing import Any

from llamaql.ports.engine import InvalidOptionsError
from llamaql.ports.errors import BadInputError
from llamaql.ports.options import resolve_options
from llamaql.ports.values import OPTION_KEYS, SamplingOptions

# Used when the context size is unknown (no engine yet); the engine re-checks per request.
DEFAULT_MAX_TOKENS_LIMIT = 32768
_INT_OPTIONS = frozenset({"top_k", "seed", "max_tokens"})


def _check_stop(value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise BadInputError(f"stop must be a list of strings, got {value!r}")
    return list(value)


def clean_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The set options (None dropped) with checked names and types; BadInputError names
    the bad one. Ranges are the engine's, checked when the options are resolved."""
    clean: dict[str, Any] = {}
    for name, value in options.items():
        if name not in OPTION_KEYS:
            raise BadInputError(f"unknown generation option {name!r}")
        if value is None:
            continue
        if name == "stop":
            clean[name] = _check_stop(value)
        elif isinstance(value, bool) or not isinstance(value, int | float) or not isfinite(value):
            raise BadInputError(f"{name} must be a number, got {value!r}")
        else:
            clean[name] = int(value) if name in _INT_OPTIONS else float(value)
    return clean


def sampling_options(options: Mapping[str, Any]) -> SamplingOptions:
    """Cleaned options (see `clean_options`) as the value the engine resolves."""
    return SamplingOptions.from_dict(clean_options(options))


def validate_options(
    options: Mapping[str, Any], *, max_tokens_limit: int | None = None
) -> SamplingOptions:
    """`sampling_options`, range-checked by the engine's own rules, for storing as a
    conversation's defaults. `max_tokens_limit` is the context size when known."""
    checked = sampling_options(options)
    try:
        resolve_options(
            checked,
            context_size=max_tokens_limit or DEFAULT_MAX_TOKENS_LIMIT,
            default_max_tokens=1,
        )
    except InvalidOptionsError as exc:
        raise BadInputError(str(exc)) from None
    return checked
