"""Pull tests: a local file server, a small real GGUF and the default model's bytes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import DEFAULT_MODEL_PATH
from tests.integration.pulls.files_server import FileServer, file_server, small_gguf


@pytest.fixture
def files() -> Iterator[FileServer]:
    with file_server() as server:
        yield server


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return small_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="session")
def default_model() -> bytes:
    """The default model's bytes (the real GGUF a user would pull)."""
    if not DEFAULT_MODEL_PATH.is_file():
        pytest.skip(f"default model not fetched ({DEFAULT_MODEL_PATH}): run make install")
    return DEFAULT_MODEL_PATH.read_bytes()


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"
