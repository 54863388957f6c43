"""A real browser on the chat page of a real server: Debian's Chromium driven by
Playwright, a `llamaql serve` child process with the default model and a SQLite file.

Playwright's own browser download comes from a CDN these machines cannot reach, so the
browser is Debian's `chromium` package, installed here when it is missing (we may be
root in CI containers); where it cannot be installed the tests skip and say why.
Each test gets a fresh browser context, so a fresh localStorage and a new user id.
A screenshot of every test's last state is kept under tests/artifacts/browser/.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from tests.integration.browser.chat_page import ChatPage
from tests.integration.chat.live import REPO_ROOT, Server, served
from tests.integration.model_files import two_model_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "tests" / "artifacts" / "browser"
APT_TIMEOUT_S = 1200
# Small enough that the gauge can be filled by typing, big enough for a few turns.
CONTEXT_SIZE = 1024
# Waits on the page: generous, because the model shares two cores with everything else.
EXPECT_TIMEOUT_MS = 120_000


def install_chromium() -> str | None:
    """Installs Debian's chromium package; None when done, else why it could not be."""
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine"
    if os.geteuid() != 0:
        return "not root, so cannot apt-get install chromium (install it, then rerun)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        try:
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            return f"{' '.join(command)} took over {APT_TIMEOUT_S}s"
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
            return f"{' '.join(command)} failed ({done.returncode}): {' | '.join(tail)}"
    return None


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        problem = install_chromium()
        if problem is not None or not CHROMIUM.is_file():
            pytest.skip(f"no browser at {CHROMIUM}: {problem or 'chromium installed elsewhere'}")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Browser]:
    # Module scope: Playwright's sync API runs its own event loop, which must be gone
    # before the async tests of other modules run theirs.
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium))
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def page_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "LLAMAQL_CONTEXT_SIZE": str(CONTEXT_SIZE),
        "LLAMAQL_PARALLEL": "2",
        # Titles written by the model would race the titles these tests set and read.
        "LLAMAQL_AUTO_TITLE": "false",
    }
    with served(tmp_path_factory.mktemp("page-server"), "page", env) as server:
        yield server


@pytest.fixture(scope="session")
def models_page_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose models folder holds the default model and a Q8_0 copy of it."""
    env = {
        "LLAMAQL_CONTEXT_SIZE": str(CONTEXT_SIZE),
        "LLAMAQL_PARALLEL": "2",
        "LLAMAQL_AUTO_TITLE": "false",
    }
    with two_model_server(tmp_path_factory, "page", env) as server:
        yield server


@pytest.fixture
def page(browser: Browser, page_server: Server, request: pytest.FixtureRequest) -> Iterator[Page]:
    """The chat page, loaded, for a new user; fails the test on any script error."""
    with opened(browser, page_server, request.node.name) as loaded:
        yield loaded


@pytest.fixture
def models_chat(
    browser: Browser, models_page_server: Server, request: pytest.FixtureRequest
) -> Iterator[ChatPage]:
    """The chat page of the server with two models."""
    with opened(browser, models_page_server, request.node.name) as loaded:
        yield ChatPage(loaded, models_page_server)


@contextlib.contextmanager
def opened(browser: Browser, server: Server, name: str) -> Iterator[Page]:
    """The chat page of `server` in a fresh browser context (a new user); fails on any
    script error, and keeps a screenshot of the last state."""
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    tab.on("dialog", lambda dialog: dialog.accept())  # the delete confirmation
    tab.goto(f"http://127.0.0.1:{server.port}/")
    expect(tab.locator("#user-id")).not_to_have_value("")
    try:
        yield tab
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
        context.close()
    assert problems == [], problems


@pytest.fixture
def chat(page: Page, page_server: Server) -> ChatPage:
    return ChatPage(page, page_server)
