"""A pull as a user sees it: `pullModel` on a real server, followed by `pullProgress` over
a real WebSocket to the end, and `llamaql pull` in a terminal and in a pipe; the file a
local HTTP server sends is the default model."""

from __future__ import annotations

import hashlib
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.chat.live import Http, Server, connect, served
from tests.integration.pulls.files_server import FileServer

ADMIN = "0b5f2c1e-3d4a-4e5f-8a9b-1c2d3e4f5a6b"
MODEL = "/SmolLM2-135M-Instruct.Q4_1.gguf"
NAME = "SmolLM2-135M-Instruct.Q4_1"
PULL = "mutation($url: String!, $sha: String) { pullModel(url: $url, sha256: $sha) }"
PROGRESS = """subscription($id: ID!) {
  pullProgress(id: $id) {
    id name state bytesDone totalBytes bytesPerSecond error { code message }
  }
}"""
CLI_TIMEOUT_S = 120


@pytest.fixture
def pull_server(tmp_path: Path, models_dir: Path) -> Iterator[Server]:
    env = {
        "LLAMAQL_MODELS_DIR": str(models_dir),
        "LLAMAQL_MODEL_ADMINS": ADMIN,
        "LLAMAQL_AUTO_TITLE": "false",
    }
    with served(tmp_path, "pulls", env) as server:
        yield server


async def test_pull_progress_reports_a_resumed_pull_to_the_end_over_a_websocket(
    pull_server: Server, files: FileServer, models_dir: Path, default_model: bytes
) -> None:
    files.behaviour.files[MODEL] = default_model
    files.behaviour.cut_at, files.behaviour.cuts = len(default_model) // 3, 1
    sha = hashlib.sha256(default_model).hexdigest()

    pulled = await Http(pull_server, ADMIN).data(PULL, url=files.file_url(MODEL), sha=sha)
    events: list[dict[str, Any]] = []
    async with connect(pull_server, ADMIN) as socket:
        op = await socket.subscribe(PROGRESS, {"id": pulled["pullModel"]})
        while not events or events[-1]["state"] not in ("COMPLETE", "FAILED"):
            events.append(await socket.event(op))

    size = float(len(default_model))
    assert events[-1]["error"] is None, events[-1]
    assert events[-1] == {**events[-1], "id": pulled["pullModel"], "name": NAME}
    assert (events[-1]["state"], events[-1]["bytesDone"], events[-1]["totalBytes"]) == (
        "COMPLETE",
        size,
        size,
    )
    assert [e["state"] for e in events[-2:]] == ["VERIFYING", "COMPLETE"]
    assert any(0 < e["bytesDone"] < size and e["totalBytes"] == size for e in events), events
    assert any(e["bytesPerSecond"] > 0 for e in events)
    assert str(files.behaviour.requests[1][1]).startswith("bytes=")
    assert folder_contents(models_dir) == {f"{NAME}.gguf": default_model}


def folder_contents(folder: Path) -> dict[str, bytes]:
    """Every file in the folder (hidden ones too) with its bytes."""
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def run_cli(tmp_path: Path, models_dir: Path, *args: str, tty: bool) -> tuple[int, str, str]:
    """`llamaql pull ARGS` with stdout on a terminal (a pty) or a pipe: (status, out, err)."""
    env = {**os.environ, "LLAMAQL_MODELS_DIR": str(models_dir)}
    command = [sys.executable, "-m", "llamaql", "pull", *args]
    if not tty:
        done = subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, timeout=CLI_TIMEOUT_S, text=True
        )
        return done.returncode, done.stdout, done.stderr
    leader, follower = pty.openpty()
    with subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=follower, stderr=subprocess.PIPE
    ) as process:
        os.close(follower)
        out = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        os.close(leader)
        assert process.stderr is not None
        err = process.stderr.read().decode()
        status = process.wait(timeout=CLI_TIMEOUT_S)
    return status, out.decode(), err


def test_the_cli_draws_a_progress_bar_on_a_terminal(
    tmp_path: Path, files: FileServer, models_dir: Path, default_model: bytes
) -> None:
    files.behaviour.files[MODEL] = default_model
    status, out, err = run_cli(tmp_path, models_dir, files.file_url(MODEL), tty=True)
    assert (status, err) == (0, "")
    frames = [frame for frame in out.split("\r") if frame.startswith(NAME)]
    assert len(frames) >= 3, out
    assert any(" [#" in frame and "MiB/s  ETA" in frame for frame in frames), out
    assert frames[-1].startswith(f"{NAME} [{'#' * 30}] 100%  93.8 MiB / 93.8 MiB"), out
    assert f"pulled {NAME} (93.8 MiB) into {models_dir / NAME}.gguf" in out
    assert (models_dir / f"{NAME}.gguf").read_bytes() == default_model


def test_the_cli_writes_plain_lines_to_a_pipe(
    tmp_path: Path, files: FileServer, models_dir: Path, default_model: bytes
) -> None:
    files.behaviour.files[MODEL] = default_model
    url = files.file_url(MODEL)
    status, out, err = run_cli(tmp_path, models_dir, url, "--name", "smol", tty=False)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert "\r" not in out
    assert lines[0] == f"pulling {url} into {models_dir}"
    assert lines[-3:] == [
        "pull smol: 93.8 MiB of 93.8 MiB (100%), " + lines[-3].split(", ")[1] + ", verifying",
        "pull smol: 93.8 MiB of 93.8 MiB (100%), " + lines[-2].split(", ")[1] + ", complete",
        f"pulled smol (93.8 MiB) into {models_dir}/smol.gguf",
    ]
    # A line per tenth at most; how many depends on when the progress feed attached (a
    # loaded machine may attach after most of the file arrived).
    assert 1 <= len(lines) - 4 <= 10
    assert (models_dir / "smol.gguf").is_file()


def test_the_cli_says_why_a_pull_failed_and_leaves_nothing(
    tmp_path: Path, files: FileServer, models_dir: Path, default_model: bytes
) -> None:
    files.behaviour.files[MODEL] = default_model
    args = (files.file_url(MODEL), "--sha256", "0" * 64)
    status, _, err = run_cli(tmp_path, models_dir, *args, tty=False)
    assert status == 1
    assert err.startswith("llamaql: pull failed: sha256 mismatch: expected 000"), err
    assert err.rstrip().endswith("(BAD_USER_INPUT)"), err
    assert list(models_dir.iterdir()) == []


def test_the_cli_refuses_a_bad_request_before_fetching(
    tmp_path: Path, files: FileServer, models_dir: Path
) -> None:
    status, out, err = run_cli(
        tmp_path, models_dir, files.file_url(MODEL), "--name", "../x", tty=False
    )
    assert (status, out) == (2, "")
    assert "'../x' is not a model name" in err
    assert files.behaviour.requests == []
    assert not models_dir.exists()
