"""The chat page's pure script helpers, run with Node's own test runner (skipped where
there is no `node`): the reconnection backoff, the code point count behind
`replyStream(after:)`, and what the page does about each live-feed event."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT_TESTS = Path(__file__).parent / "js"
NODE_TIMEOUT_S = 60


def test_the_page_helpers_pass_their_node_tests() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node on this machine for the page's script tests")
    files = sorted(str(path) for path in SCRIPT_TESTS.glob("*.test.mjs"))
    assert files, f"no script tests under {SCRIPT_TESTS}"
    done = subprocess.run(
        [node, "--test", *files],
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# fail 0" in done.stdout, done.stdout
