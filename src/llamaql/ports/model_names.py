"""Model names: a GGUF file's name in the API (stable, unique within the models folder,
URL-safe), and the check a name from a client or a pull must pass before it touches
the file system."""

from __future__ import annotations

import re
from pathlib import Path

# Letters, digits, '.', '_' and '-', starting with a letter or digit: URL-safe, never a
# path ("..", "/", "\\" and leading dots cannot occur), at most 128 characters.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# The first part of a split model: "<stem>-00001-of-00003.gguf".
_SPLIT = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<total>\d{5})$")
GGUF_SUFFIX = ".gguf"


def is_model_name(name: str) -> bool:
    """Whether `name` is a valid model name (and so a safe file stem)."""
    return _NAME.fullmatch(name) is not None and ".." not in name


def model_name(path: Path) -> str | None:
    """The model name of a GGUF file: its stem; for a split model, the stem without the
    `-00001-of-0000N` part, and None for its other parts (they belong to the first); None
    for a file whose stem is not a valid name."""
    if path.suffix.lower() != GGUF_SUFFIX:
        return None
    stem = path.stem
    split = _SPLIT.match(stem)
    if split is not None:
        if int(split["part"]) != 1:
            return None
        stem = split["stem"]
    return stem if is_model_name(stem) else None
