"""Generation options: validation shared by conversations (defaults) and chat (per message).

Options travel as a dict with snake_case keys, the same keys stored in
`Conversation.options`; None values mean "not set" and are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import isfinite
from typing import Any

from llamaql.engine.options import resolve_options
from llamaql.engine.types import InvalidOptionsError, SamplingOptions
from llamaql.services.errors import BadInputError

OPTION_KEYS = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repeat_penalty",
    "seed",
    "max_tokens",
    "stop",
)
# Used when the context size is unknown (no engine yet); the engine re-checks per request.
DEFAULT_MAX_TOKENS_LIMIT = 32768
_INT_OPTIONS = frozenset({"top_k", "seed", "max_tokens"})


def _check_stop(value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise BadInputError(f"stop must be a list of strings, got {value!r}")
    return list(value)


def validate_options(
    options: Mapping[str, Any], *, max_tokens_limit: int | None = None
) -> dict[str, Any]:
    """Return the set options (None dropped), raising BadInputError naming the bad one.

    Names and types are checked here; the ranges are the engine's own (one set of rules
    for stored conversation defaults and per-message options). `max_tokens_limit` is the
    context size when known.
    """
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
    sampling = SamplingOptions(**{**clean, "stop": tuple(clean.get("stop", ()))})
    try:
        resolve_options(
            sampling,
            context_size=max_tokens_limit or DEFAULT_MAX_TOKENS_LIMIT,
            default_max_tokens=1,
        )
    except InvalidOptionsError as exc:
        raise BadInputError(str(exc)) from None
    return clean
