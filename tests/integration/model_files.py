"""A models folder of two real models for the tests of other parts (the chat page, the
terminal client, a remote upstream): the default model and a Q8_0 requantized copy of it
(written with the models tests' `requantize`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.integration.chat.live import DEFAULT_MODEL_PATH, Server, require_model, served
from tests.integration.models.conftest import requantize

SECOND_MODEL = "smol-q8"


def two_models(folder: Path) -> tuple[Path, Path]:
    """The default model copied into `folder` and a Q8_0 copy named SECOND_MODEL beside
    it: (default, second). Skips the test without the default model."""
    require_model()
    import llama_cpp

    default = Path(shutil.copy(DEFAULT_MODEL_PATH, folder / DEFAULT_MODEL_PATH.name))
    second = requantize(default, folder / f"{SECOND_MODEL}.gguf", llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0)
    return default, second


@contextmanager
def two_model_server(
    tmp_path_factory: pytest.TempPathFactory, name: str, env: Mapping[str, str]
) -> Iterator[Server]:
    """A server (`served`, named `name`) whose models folder holds the default model and
    a Q8_0 copy of it, the default being the default model; `env` adds to that."""
    folder = tmp_path_factory.mktemp(f"{name}-models")
    default, _ = two_models(folder)
    models_env = {"LLAMAQL_MODELS_DIR": str(folder), "LLAMAQL_MODEL_PATH": str(default), **env}
    with served(tmp_path_factory.mktemp(f"{name}-models-server"), name, models_env) as server:
        yield server
