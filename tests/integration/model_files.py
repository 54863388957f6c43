"""A models folder of two real models for the tests of other parts (the chat page, the
terminal client, a remote upstream): the default model and a Q8_0 requantized copy of it
(written with the models tests' `requantize`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.integration.chat.live import DEFAULT_MODEL_PATH, require_model
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
