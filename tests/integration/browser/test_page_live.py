"""Two tabs of the chat page on one user, in a real browser against the real model: the
second tab shows the conversation the first creates and the reply the first sends as it
streams, without reloading (the `events` feed, then replyStream); the first tab reloads
mid-reply and goes on streaming the same reply. Both end with the stored text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from tests.integration.browser.chat_page import ChatPage
from tests.integration.browser.conftest import opened
from tests.integration.chat.live import LONG_OPTIONS, LONG_TEXT, Server

pytestmark = [pytest.mark.model, pytest.mark.slow]

UPDATE = """mutation($id: ID!, $input: UpdateConversationInput!) {
  updateConversation(id: $id, input: $input) { id } }"""
STATUS = """query($id: ID!) { conversation(id: $id) {
  messages(first: 100) { edges { node { status } } } } }"""
# Records each length the newest reply's text had, from outside the page's own code.
WATCH_REPLY_GROWTH = """() => {
  window.replyLengths = [];
  new MutationObserver(() => {
    const reply = [...document.querySelectorAll('#messages .message.assistant')].pop();
    const length = reply ? reply.querySelector('.text').textContent.length : 0;
    if (length > 0 && window.replyLengths.at(-1) !== length) window.replyLengths.push(length);
  }).observe(document.getElementById('messages'),
             { childList: true, subtree: true, characterData: true });
}"""
GREW_TWICE = "() => window.replyLengths.length >= 3"


@pytest.fixture
def tabs(
    browser: Browser, page_server: Server, request: pytest.FixtureRequest
) -> Iterator[tuple[ChatPage, ChatPage]]:
    """Two tabs (two browser contexts) of the same user."""
    name = request.node.name
    with (
        opened(browser, page_server, f"{name}-first") as first,
        opened(browser, page_server, f"{name}-second") as second,
    ):
        one, two = ChatPage(first, page_server), ChatPage(second, page_server)
        same_user(second, one.user_id)
        yield one, two


def same_user(page: Page, user_id: str) -> None:
    page.locator("details#settings").evaluate("details => { details.open = true; }")
    page.fill("#user-id", user_id)
    page.click("#user-form button[type=submit]")
    expect(page.locator("#user-id")).to_have_value(user_id)
    expect(page.locator("#error")).to_be_hidden()


def test_a_second_tab_and_a_reload_follow_the_same_reply(tabs: tuple[ChatPage, ChatPage]) -> None:
    one, two = tabs
    conversation_id = one.create("Shared between tabs")
    # The second tab lists it without a reload: the events feed told it.
    expect(two.sidebar_item(conversation_id).locator(".title")).to_have_text("Shared between tabs")
    two.sidebar_item(conversation_id).click()
    expect(two.page.locator("#send")).to_be_enabled()
    one.api(UPDATE, id=conversation_id, input={"options": LONG_OPTIONS})
    two.page.evaluate(WATCH_REPLY_GROWTH)

    one.send(LONG_TEXT)
    # The second tab shows the message and the reply as it streams.
    expect(two.last("user").locator(".text")).to_have_text(LONG_TEXT)
    two.page.wait_for_function(GREW_TWICE)
    expect(two.last("assistant")).to_have_attribute("data-status", "GENERATING")

    # The first tab reloads while the reply is generating, and goes on following it.
    expect(one.last("assistant").locator(".text")).not_to_be_empty()
    edges = one.api(STATUS, id=conversation_id)["conversation"]["messages"]["edges"]
    assert edges[-1]["node"]["status"] == "GENERATING"
    one.page.reload()
    expect(one.page.locator("#conv-title")).to_have_text("Shared between tabs")
    one.page.evaluate(WATCH_REPLY_GROWTH)

    for tab in (one, two):
        expect(tab.wait_until_settled()).to_have_attribute("data-status", "COMPLETE")
    stored = one.stored(conversation_id)
    assert [m["status"] for m in stored] == ["COMPLETE", "COMPLETE"]
    rows = [
        {"id": m["id"], "role": m["role"], "status": m["status"], "text": m["text"]} for m in stored
    ]
    assert one.shown() == rows
    assert two.shown() == rows
    assert len(stored[1]["text"]) > 100


def test_a_rename_and_a_delete_show_in_the_other_tab(tabs: tuple[ChatPage, ChatPage]) -> None:
    one, two = tabs
    conversation_id = one.create("Before")
    expect(two.sidebar_item(conversation_id)).to_be_visible()
    two.sidebar_item(conversation_id).click()
    expect(two.page.locator("#conv-title")).to_have_text("Before")

    one.page.fill("#rename-title", "After")
    one.page.click("#rename-form button[type=submit]")
    expect(two.sidebar_item(conversation_id).locator(".title")).to_have_text("After")
    expect(two.page.locator("#conv-title")).to_have_text("After")

    one.page.click("#delete")
    expect(two.sidebar_item(conversation_id)).to_have_count(0)
    expect(two.page.locator("#conv-title")).to_have_text("No conversation open")
    expect(two.page.locator("#messages")).to_contain_text("Conversation deleted.")
