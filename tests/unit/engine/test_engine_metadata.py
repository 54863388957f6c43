"""GGUF metadata: the header facts, and clear errors for missing or foreign files."""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf import GGUFWriter

from llamaql.engine.local.metadata import read_gguf_metadata
from llamaql.ports.engine import EngineError, ModelFileError

DEFAULT_MODEL = Path("models/SmolLM2-135M-Instruct.Q4_1.gguf")


def write_gguf(path: Path, *, template: str | None, name: str | None = "Tiny") -> Path:
    writer = GGUFWriter(path, "llama")
    if name is not None:
        writer.add_name(name)
    writer.add_context_length(4096)
    writer.add_array("general.tags", [1, 2, 3])  # a non-string array is skipped
    writer.add_token_list(["<unk>", "<s>", "</s>", "héllo"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    if template is not None:
        writer.add_chat_template(template)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_reads_a_written_header(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "tiny.gguf", template="{{ messages }}")
    meta = read_gguf_metadata(path)
    assert (meta.name, meta.architecture, meta.trained_context) == ("Tiny", "llama", 4096)
    assert (meta.bos_token, meta.eos_token) == ("<s>", "</s>")
    assert meta.chat_template == "{{ messages }}"
    assert meta.file_size == path.stat().st_size


def test_no_template_and_no_name(tmp_path: Path) -> None:
    meta = read_gguf_metadata(write_gguf(tmp_path / "plain.gguf", template=None, name=None))
    assert meta.chat_template is None
    assert meta.name == "plain"


@pytest.mark.model
def test_default_model() -> None:
    if not DEFAULT_MODEL.is_file():
        pytest.skip(f"{DEFAULT_MODEL} is missing: run `make model`")
    meta = read_gguf_metadata(DEFAULT_MODEL)
    assert meta.architecture == "llama"
    assert meta.trained_context == 8192
    assert meta.eos_token == "<|im_end|>"
    assert meta.chat_template is not None
    assert "<|im_start|>" in meta.chat_template


def test_missing_file_says_how_to_get_the_model(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"make model.*LLAMAQL_MODEL_PATH"):
        read_gguf_metadata(tmp_path / "absent.gguf")


def test_not_a_gguf(tmp_path: Path) -> None:
    path = tmp_path / "notes.gguf"
    path.write_text("hello, this is not a model at all\n" * 3)
    with pytest.raises(ModelFileError, match="not a GGUF file"):
        read_gguf_metadata(path)


@pytest.mark.parametrize("size", [0, 30, 200])
def test_truncated_gguf(tmp_path: Path, size: int) -> None:
    whole = write_gguf(tmp_path / "whole.gguf", template="{{ x }}").read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(whole[:size])
    with pytest.raises(ModelFileError) as caught:
        read_gguf_metadata(path)
    assert isinstance(caught.value, EngineError)
