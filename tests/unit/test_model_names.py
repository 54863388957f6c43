"""Model names: a file's stem, split models as one, nothing that could be a path."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamaql.ports.model_names import is_model_name, model_name


@pytest.mark.parametrize(
    ("file", "name"),
    [
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct.Q4_1"),
        ("sub/Llama-3.2-3B.Q8_0.GGUF", "Llama-3.2-3B.Q8_0"),
        ("big-00001-of-00003.gguf", "big"),
        ("big-00002-of-00003.gguf", None),
        ("notes.txt", None),
        (".hidden.gguf", None),
        ("with space.gguf", None),
        ("a..b.gguf", None),
    ],
)
def test_a_model_is_named_by_its_file_stem(file: str, name: str | None) -> None:
    assert model_name(Path(file)) == name


@pytest.mark.parametrize("name", ["../etc", "a/b", "a\\b", "", ".x", "x" * 129, "é", "a b"])
def test_a_name_that_could_be_a_path_or_unsafe_in_a_url_is_refused(name: str) -> None:
    assert not is_model_name(name)


def test_an_ordinary_name_is_accepted() -> None:
    assert is_model_name("qwen2.5-0.5b-instruct-q4_k_m")
