"""`llamaql pull`'s command in this process (the pty and pipe tests run it as a child):
its lines, its exit statuses, and what it leaves in the models folder."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import pytest
from tests.integration.pulls.files_server import FileServer

from llamaql.cli_pull import EXIT_BAD_REQUEST, EXIT_PULL_FAILED, run_pull
from llamaql.config import load_config

TINY = "/tiny.gguf"


def _pull(url: str, models_dir: Path, **flags: object) -> int:
    args = argparse.Namespace(
        url=url, name=flags.get("name"), sha256=flags.get("sha256"), force=flags.get("force", False)
    )
    return run_pull(args, load_config(models_dir=models_dir))


def test_a_pull_prints_its_progress_and_lands_in_the_folder(
    files: FileServer, models_dir: Path, tiny_gguf: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    files.behaviour.files[TINY] = tiny_gguf
    digest = hashlib.sha256(tiny_gguf).hexdigest()
    assert _pull(files.file_url(TINY), models_dir, name="small", sha256=digest) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == f"pulling {files.file_url(TINY)} into {models_dir}"
    assert lines[-1].startswith("pulled small (")
    assert lines[-1].endswith(f"into {models_dir / 'small.gguf'}")
    assert any(line.startswith("pull small: ") and "complete" in line for line in lines)
    assert err == ""
    assert (models_dir / "small.gguf").read_bytes() == tiny_gguf
    # A second pull of the same name is refused before anything is fetched...
    requests = len(files.behaviour.requests)
    assert _pull(files.file_url(TINY), models_dir, name="small") == EXIT_BAD_REQUEST
    assert "--force" in capsys.readouterr().err
    assert len(files.behaviour.requests) == requests
    # ...and replaces it when asked.
    assert _pull(files.file_url(TINY), models_dir, name="small", force=True) == 0


def test_a_failed_pull_says_why_and_leaves_nothing(
    files: FileServer, models_dir: Path, tiny_gguf: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    files.behaviour.files[TINY] = tiny_gguf
    status = _pull(files.file_url(TINY), models_dir, sha256="0" * 64)
    assert status == EXIT_PULL_FAILED
    err = capsys.readouterr().err
    assert err.startswith("llamaql: pull failed: sha256 mismatch"), err
    assert err.rstrip().endswith("(BAD_USER_INPUT)"), err
    assert list(models_dir.iterdir()) == []
