"""The models folder as a catalog: names, the default, files coming and going."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from gguf import GGUFWriter

from llamaql.config import load_config
from llamaql.engine.local.catalog import ModelCatalog


def write_gguf(path: Path, *, context: int = 512, name: str = "Fake") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = GGUFWriter(path, "llama")
    writer.add_name(name)
    writer.add_context_length(context)
    writer.add_block_count(2)
    writer.add_embedding_length(64)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_file_type(7)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def catalog(folder: Path, default: Path, **settings: object) -> ModelCatalog:
    config = load_config(models_dir=folder, model_path=default, **settings)
    return ModelCatalog(config.engine)


def test_every_gguf_under_the_folder_is_a_model_named_by_its_stem(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    write_gguf(folder / "a.gguf")
    write_gguf(folder / "sub" / "b.Q8_0.gguf", context=1024)
    write_gguf(folder / "big-00001-of-00002.gguf")
    (folder / "big-00002-of-00002.gguf").write_bytes(b"part two")
    (folder / "notes.txt").write_text("not a model")
    found = catalog(folder, folder / "a.gguf").scan()
    assert list(found) == ["a", "b.Q8_0", "big"]
    meta = found["b.Q8_0"].meta
    assert (meta.trained_context, meta.quantization) == (1024, "Q8_0")
    # 2 layers x keys and values x (64 / 4 heads x 2 kv heads) x 2 bytes
    assert meta.kv_bytes_per_token == 2 * 2 * 32 * 2


def test_files_added_and_removed_show_at_the_next_scan(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    models = catalog(folder, write_gguf(folder / "a.gguf"))
    assert list(models.scan()) == ["a"]
    write_gguf(folder / "b.gguf")
    assert list(models.scan()) == ["a", "b"]
    (folder / "b.gguf").unlink()
    assert list(models.scan()) == ["a"]
    # A file rewritten in place is read again (its header is cached by mtime and size).
    write_gguf(folder / "a.gguf", context=2048)
    os.utime(folder / "a.gguf", ns=(1, 1))
    assert models.scan()["a"].meta.trained_context == 2048


def test_the_default_is_llamaql_model_else_the_model_path(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    write_gguf(folder / "a.gguf")
    outside = write_gguf(tmp_path / "elsewhere" / "mine.gguf")
    models = catalog(folder, outside)
    assert models.default_name == "mine"
    assert models.scan()["mine"].path == outside  # listed under its stem
    assert catalog(folder, outside, model="a").default_name == "a"


def test_two_files_with_one_name_pick_the_shallower_and_warn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "models"
    write_gguf(folder / "deep" / "x.gguf")
    shallow = write_gguf(folder / "x.gguf")
    with caplog.at_level(logging.WARNING):
        assert catalog(folder, write_gguf(folder / "a.gguf")).scan()["x"].path == shallow
    assert "2 files are named model 'x'" in caplog.text


def test_an_unreadable_file_is_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    write_gguf(folder / "a.gguf")
    (folder / "broken.gguf").write_bytes(b"not gguf at all, not at all")
    assert list(catalog(folder, folder / "a.gguf").scan()) == ["a"]
