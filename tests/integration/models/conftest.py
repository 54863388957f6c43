"""A models folder for the real-model tests: the default model, two requantized copies
of it (llama_model_quantize with allow_requantize: other files, sizes and quantizations,
loadable beside the original) and a truncated file whose header reads but whose load
fails; and one live server over it."""

from __future__ import annotations

import ctypes
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.chat.live import DEFAULT_MODEL_PATH, Server, require_model, served

DEFAULT = DEFAULT_MODEL_PATH.stem
Q8 = "smol-q8"
Q4 = "smol-q4_0"
BROKEN = "smol-broken"


def requantize(source: Path, target: Path, ftype: int) -> Path:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    status = llama_cpp.llama_model_quantize(
        str(source).encode(), str(target).encode(), ctypes.byref(params)
    )
    assert status == 0, f"llama_model_quantize failed ({status})"
    return target


@pytest.fixture(scope="session")
def models_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_model()
    import llama_cpp

    folder = tmp_path_factory.mktemp("models")
    default = shutil.copy(DEFAULT_MODEL_PATH, folder / DEFAULT_MODEL_PATH.name)
    requantize(Path(default), folder / f"{Q8}.gguf", llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0)
    requantize(Path(default), folder / f"{Q4}.gguf", llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0)
    with Path(default).open("rb") as whole, (folder / f"{BROKEN}.gguf").open("wb") as part:
        part.write(whole.read(DEFAULT_MODEL_PATH.stat().st_size // 2))
    return folder


@pytest.fixture(scope="session")
def models_server(
    models_folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    env = {
        "LLAMAQL_MODELS_DIR": str(models_folder),
        "LLAMAQL_MODEL_PATH": str(models_folder / DEFAULT_MODEL_PATH.name),
        "LLAMAQL_MAX_LOADED_MODELS": "2",
        "LLAMAQL_CONTEXT_SIZE": "512",
        "LLAMAQL_PARALLEL": "2",
        "LLAMAQL_AUTO_TITLE": "false",
        "LLAMAQL_MAX_LIVE_REPLIES_PER_USER": "4",
    }
    with served(tmp_path_factory.mktemp("models-server"), "models", env) as server:
        yield server
