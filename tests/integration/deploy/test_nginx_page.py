"""The bundled chat page through the documented nginx config (LLAMAQL_AUTH=header): Debian's
Chromium logs in to the proxy with basic auth, the page asks `viewer` and adopts the id
the proxy names (whatever id the browser kept), and a reply streams over the proxied
WebSocket, stored as the proxy's user's. Without the adoption the page's connection_init
payload would contradict the proxy's header and the server would close the socket (4403).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from tests.integration.browser.chat_page import ChatPage
from tests.integration.browser.conftest import ARTIFACTS, EXPECT_TIMEOUT_MS

# The browser fixtures, shared with tests/integration/browser/ (re-exported to register).
from tests.integration.browser.conftest import browser as browser
from tests.integration.browser.conftest import chromium as chromium
from tests.integration.browser.test_page_replies import WATCH_REPLY_GROWTH
from tests.integration.chat.live import Server
from tests.integration.deploy.conftest import UNMAPPED, USERS, Proxy

pytestmark = [pytest.mark.model, pytest.mark.slow]

ALICE, BOB = USERS["alice"], USERS["bob"]
STORAGE_KEY = "llamaql.userId"  # where the page keeps its own id (chat.js)
CREATE = """mutation($input: CreateConversationInput) {
  createConversation(input: $input) { id } }"""
MESSAGES = """query($id: ID!) { conversation(id: $id) {
  messages(first: 100) { edges { node { id role text status } } } } }"""
OpenPage = Callable[..., Page]


def api(proxy: Proxy, user: str, query: str, **variables: Any) -> dict[str, Any]:
    """A GraphQL request through the proxy, logged in as `user`."""
    response = httpx.post(
        proxy.http_url,
        json={"query": query, "variables": variables},
        headers={"Authorization": proxy.basic(user)},
        verify=proxy.ssl_context(),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


@pytest.fixture
def open_page(browser: Browser, proxy: Proxy, request: pytest.FixtureRequest) -> Iterator[OpenPage]:
    """Opens the page through the proxy in a fresh browser logged in as `user`, whose
    local storage already holds `kept_id`; fails the test on any script error."""
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    problems: list[str] = []
    pages: list[Page] = []

    def open_as(user: str, kept_id: str) -> Page:
        context = browser.new_context(
            http_credentials={"username": user, "password": proxy.passwords[user]},
            ignore_https_errors=True,  # the proxy's certificate is self-signed
            viewport={"width": 1280, "height": 900},
        )
        context.add_init_script(f"localStorage.setItem({STORAGE_KEY!r}, {json.dumps(kept_id)})")
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on(
            "console",
            lambda message: (
                problems.append(f"console: {message.text}") if message.type == "error" else None
            ),
        )
        pages.append(page)
        page.goto(f"{proxy.origin}/")
        return page

    try:
        yield open_as
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for n, page in enumerate(pages):
            page.screenshot(path=ARTIFACTS / f"{request.node.name}-{n}.png", full_page=True)
            page.context.close()
    assert problems == [], problems


def test_the_page_adopts_the_proxy_user_and_streams_a_reply(
    open_page: OpenPage, proxy: Proxy, llamaql: Server
) -> None:
    bobs = api(proxy, "bob", CREATE, input={"title": "bob's own"})["createConversation"]["id"]
    # alice's browser kept bob's id (from a visit without the proxy, say).
    page = open_page("alice", kept_id=BOB)
    expect(page.locator("#user-id")).to_have_value(ALICE)
    note = page.locator("#identity-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text(ALICE)
    expect(note).to_contain_text(BOB)
    chat = ChatPage(page, llamaql)
    expect(chat.sidebar_item(bobs)).to_have_count(0)

    conversation_id = chat.create("Through the proxy")
    chat.page.evaluate(WATCH_REPLY_GROWTH)
    chat.send("Write three sentences about Paris.")
    reply = chat.wait_until_settled()
    expect(reply).to_have_attribute("data-status", "COMPLETE")
    expect(page.locator("#error")).to_be_hidden()
    lengths = page.evaluate("window.replyLengths")
    assert len(lengths) >= 2, lengths  # streamed in pieces, not all at once

    # Stored as the proxy's user: alice sees it through the proxy, bob does not.
    stored = api(proxy, "alice", MESSAGES, id=conversation_id)["conversation"]
    messages = [edge["node"] for edge in stored["messages"]["edges"]]
    assert [m["role"] for m in messages] == ["USER", "ASSISTANT"]
    assert messages[1]["status"] == "COMPLETE"
    assert messages[1]["text"].strip()
    assert chat.shown() == messages
    assert api(proxy, "bob", MESSAGES, id=conversation_id) == {"conversation": None}


def test_a_page_keeping_the_proxy_id_says_nothing(open_page: OpenPage) -> None:
    page = open_page("bob", kept_id=BOB)
    expect(page.locator("#user-id")).to_have_value(BOB)
    expect(page.locator("#conversations")).to_be_attached()
    expect(page.locator("#total")).not_to_have_text("")  # the list has loaded
    expect(page.locator("#identity-note")).to_be_hidden()
    expect(page.locator("#error")).to_be_hidden()


def test_a_login_without_an_id_is_shown_nothing(open_page: OpenPage) -> None:
    # carol passes the proxy's login but has no llamaql id; her browser kept alice's.
    page = open_page(UNMAPPED, kept_id=ALICE)
    expect(page.locator("#error")).to_contain_text("UNAUTHENTICATED")
    expect(page.locator("#conversations li")).to_have_count(0)
    expect(page.locator("#identity-note")).to_be_hidden()
