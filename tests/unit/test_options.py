"""Generation options are checked with messages that name the option and its range."""

from __future__ import annotations

from typing import Any

import pytest

from llamaql.ports.errors import BadInputError
from llamaql.ports.values import SamplingOptions
from llamaql.services.options import validate_options


def test_valid_options_are_kept_and_none_dropped() -> None:
    given = {
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 0,
        "min_p": 0.05,
        "repeat_penalty": 1.1,
        "seed": -1,
        "max_tokens": 64,
        "stop": ["\n\n"],
        "temperature_unused": None,
    }
    given.pop("temperature_unused")
    assert validate_options({**given, "seed": None}).to_dict() == {
        key: value for key, value in given.items() if key != "seed"
    }
    assert validate_options({"seed": 2**32 - 1}).seed == 2**32 - 1


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"temperature": 2.5}, "temperature must be between 0 and 2"),
        ({"top_p": -0.1}, "top_p must be between 0 and 1"),
        ({"top_k": 1001}, "top_k must be between 0 and 1000"),
        ({"min_p": 1.5}, "min_p must be between 0 and 1"),
        ({"repeat_penalty": 3}, "repeat_penalty must be between 0 and 2"),
        ({"repeat_penalty": 0}, "repeat_penalty must be greater than 0"),
        ({"seed": -2}, "seed must be between 0 and 4294967295"),
        ({"seed": 2**32}, "seed must be between 0 and 4294967295"),
        ({"max_tokens": 0}, "max_tokens must be between 1 and"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop takes at most 4 strings"),
        ({"stop": [""]}, "each stop string must be 1 to 64 characters"),
        ({"stop": ["x" * 65]}, "each stop string must be 1 to 64 characters"),
        ({"stop": "x"}, "stop must be a list of strings"),
        ({"temperature": "hot"}, "temperature must be a number"),
        ({"colour": 1}, "unknown generation option 'colour'"),
    ],
)
def test_out_of_range_options_name_the_option(options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(BadInputError, match=fragment) as caught:
        validate_options(options)
    assert caught.value.code == "BAD_USER_INPUT"


def test_max_tokens_is_bounded_by_the_context_when_known() -> None:
    assert validate_options({"max_tokens": 512}, max_tokens_limit=512) == SamplingOptions(
        max_tokens=512
    )
    with pytest.raises(BadInputError, match="between 1 and 512, got 513"):
        validate_options({"max_tokens": 513}, max_tokens_limit=512)
