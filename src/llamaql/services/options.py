"""Generation options: validation shared by conversations (defaults) and chat (per message).

Options travel as a dict with snake_case keys, the same keys stored in
`Conversation.options`; None values mean "not set" and are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
SEED_MAX = 2**32 - 1
MAX_STOP_STRINGS = 4
MAX_STOP_CHARS = 64
# Used when the context size is unknown (no engine yet); the engine re-checks per request.
DEFAULT_MAX_TOKENS_LIMIT = 32768

_FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "min_p": (0.0, 1.0),
    "repeat_penalty": (0.0, 2.0),
}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _check_range(name: str, value: float, low: float, high: float, note: str = "") -> None:
    if not low <= value <= high:
        raise BadInputError(
            f"{name} must be between {_number(low)} and {_number(high)}{note}, got {value!r}"
        )


def _check_stop(value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise BadInputError(f"stop must be a list of strings, got {value!r}")
    if len(value) > MAX_STOP_STRINGS:
        raise BadInputError(f"stop takes at most {MAX_STOP_STRINGS} strings, got {len(value)}")
    for item in value:
        if not isinstance(item, str) or not 1 <= len(item) <= MAX_STOP_CHARS:
            raise BadInputError(
                f"each stop string must be 1 to {MAX_STOP_CHARS} characters, got {item!r}"
            )
    return list(value)


def validate_options(
    options: Mapping[str, Any], *, max_tokens_limit: int | None = None
) -> dict[str, Any]:
    """Return the set options (None dropped), raising BadInputError naming the bad one.

    `max_tokens_limit` is the context size when known.
    """
    clean: dict[str, Any] = {}
    for name, value in options.items():
        if name not in OPTION_KEYS:
            raise BadInputError(f"unknown generation option {name!r}")
        if value is None:
            continue
        if name == "stop":
            clean[name] = _check_stop(value)
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadInputError(f"{name} must be a number, got {value!r}")
        if name in _FLOAT_RANGES:
            low, high = _FLOAT_RANGES[name]
            note = " (1 = off)" if name == "repeat_penalty" else ""
            _check_range(name, value, low, high, note)
            if name == "repeat_penalty" and value <= 0:
                # llama.cpp divides logits by it: the engine refuses 0, so refuse it here
                # too rather than store a conversation default every message would fail on.
                raise BadInputError(
                    f"repeat_penalty must be greater than 0 (1 = off), got {value!r}"
                )
            clean[name] = float(value)
        elif name == "top_k":
            _check_range(name, value, 0, 1000, " (0 = off)")
            clean[name] = int(value)
        elif name == "seed":
            if value != -1:
                _check_range(name, value, 0, SEED_MAX, " (or -1 for random)")
            clean[name] = int(value)
        else:  # max_tokens
            limit = max_tokens_limit or DEFAULT_MAX_TOKENS_LIMIT
            _check_range(name, value, 1, limit)
            clean[name] = int(value)
    return clean
