"""Fixtures shared by every tier: a config on a throwaway SQLite file."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from llamaql.config import DEFAULT_MODEL_FILE, Config, load_config

# Starlette 1.x warns that its TestClient prefers httpx2 over httpx; with
# filterwarnings=error that warning would fail collection. The client works the same.
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore",
        message="Using `httpx` with `starlette.testclient`",
        category=StarletteDeprecationWarning,
    )
    import starlette.testclient  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_PATH = REPO_ROOT / "models" / DEFAULT_MODEL_FILE


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A real SQLite file, new for each test."""
    return f"sqlite+aiosqlite:///{tmp_path / 'llamaql.db'}"


@pytest.fixture
def config(database_url: str, tmp_path: Path) -> Config:
    """The config for tests: a fresh database, a fresh KV folder and the bundled model's path."""
    return load_config(
        database_url=database_url, model_path=DEFAULT_MODEL_PATH, kv_dir=tmp_path / "kv"
    )
