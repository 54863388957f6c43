"""What a pull names is checked before anything is fetched: URL, name, checksum."""

from __future__ import annotations

import pytest

from llamaql.ports.errors import BadInputError
from llamaql.services.pull_sources import pull_source

SHA = "AB" * 32


def test_an_https_url_names_the_model_after_its_file() -> None:
    source = pull_source("https://example.com/m/SmolLM2-135M.Q4_1.gguf?download=1", sha256=SHA)
    assert (source.url, source.name, source.sha256, source.replace) == (
        "https://example.com/m/SmolLM2-135M.Q4_1.gguf?download=1",
        "SmolLM2-135M.Q4_1",
        SHA.lower(),
        False,
    )


def test_hf_urls_resolve_to_hugging_faces_download_url() -> None:
    source = pull_source("hf://owner/repo/sub/model-Q8_0.gguf")
    assert source.url == "https://huggingface.co/owner/repo/resolve/main/sub/model-Q8_0.gguf"
    assert source.name == "model-Q8_0"


def test_an_escaped_path_in_the_url_names_only_its_last_part() -> None:
    assert pull_source("https://example.com/..%2F..%2Fx.gguf").name == "x"


def test_a_given_name_wins_over_the_files() -> None:
    assert pull_source("http://127.0.0.1:9/x/download", name="mine").name == "mine"


@pytest.mark.parametrize(
    ("url", "fields", "expected"),
    [
        ("ftp://example.com/a.gguf", {}, "only http://, https:// and hf://"),
        ("file:///etc/passwd", {}, "only http://"),
        ("https:///a.gguf", {}, "only http://"),
        ("hf://owner/a.gguf", {}, "hf://owner/repo/file.gguf"),
        ("hf://owner/repo/../x.gguf", {}, "hf://owner/repo/file.gguf"),
        ("https://example.com/download", {}, "give a name"),
        ("https://example.com/big-00001-of-00003.gguf", {}, "give a name"),
        ("https://example.com/a.gguf", {"name": "../x"}, "is not a model name"),
        ("https://example.com/a.gguf", {"name": "a/b"}, "is not a model name"),
        ("https://example.com/a.gguf", {"sha256": "abc"}, "64 hexadecimal digits"),
        ("https://example.com/" + "a" * 3000 + ".gguf", {}, "longer than"),
    ],
)
def test_bad_requests_are_refused_naming_what_is_wrong(
    url: str, fields: dict[str, str], expected: str
) -> None:
    with pytest.raises(BadInputError) as refused:
        pull_source(url, **fields)  # type: ignore[arg-type]
    assert expected in refused.value.message
