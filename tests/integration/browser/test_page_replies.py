"""The chat page in a real browser: replies stream in, stop, regenerate into versions a
user flips between, and an edited message starts a branch of its own."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from tests.integration.browser.chat_page import ChatPage
from tests.integration.chat.live import LONG_OPTIONS, LONG_TEXT

pytestmark = [pytest.mark.model, pytest.mark.slow]

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


def test_a_new_conversation_streams_its_reply(chat: ChatPage) -> None:
    conversation_id = chat.create("Paris")
    expect(chat.page.locator("#conv-title")).to_have_text("Paris")
    chat.page.evaluate(WATCH_REPLY_GROWTH)
    chat.send("Write three sentences about Paris.")

    reply = chat.wait_until_settled()
    expect(reply).to_have_attribute("data-status", "COMPLETE")
    stored = chat.stored(conversation_id)
    assert [m["role"] for m in stored] == ["USER", "ASSISTANT"]
    assert chat.shown() == [
        {"id": m["id"], "role": m["role"], "status": m["status"], "text": m["text"]} for m in stored
    ]
    assert stored[1]["text"].strip()
    # The text arrived in pieces (TokenDelta frames), not all at once at the end.
    lengths = chat.page.evaluate("window.replyLengths")
    assert len(lengths) >= 2, lengths
    assert lengths == sorted(lengths), lengths
    expect(reply.locator(".meta")).to_contain_text("tokens/s")
    expect(chat.page.locator("#status")).to_have_text("")


def test_stop_keeps_the_reply_so_far(chat: ChatPage) -> None:
    conversation_id = chat.open_new_via_api("Counting", **LONG_OPTIONS)
    chat.send(LONG_TEXT)
    reply = chat.last("assistant")
    expect(reply.locator(".text")).not_to_be_empty()
    chat.page.click("#stop")

    reply = chat.wait_until_settled()
    expect(reply).to_have_attribute("data-status", "CANCELLED")
    expect(chat.page.locator("#status")).to_contain_text("Stopped")
    stored = chat.stored(conversation_id)[-1]
    assert stored["status"] == "CANCELLED"
    assert reply.locator(".text").text_content() == stored["text"]
    assert len(stored["text"]) < 600  # far from the 400 tokens it was asked for
    # The conversation is free again: the next message gets its reply.
    chat.send("Say hi.")
    expect(chat.wait_until_settled()).to_have_attribute("data-status", "COMPLETE")


def test_regenerate_makes_versions_to_flip_between(chat: ChatPage) -> None:
    conversation_id = chat.open_new_via_api("Facts", maxTokens=16)
    chat.send("Tell me a fun fact about cats.")
    first = chat.wait_until_settled()
    first_id = first.get_attribute("data-id")
    first_text = first.locator(".text").text_content()
    expect(first.locator(".versions")).to_have_count(0)  # one version: no switcher

    first.locator("button.regenerate").click()
    second = chat.wait_until_settled()
    expect(second).not_to_have_attribute("data-id", first_id or "")
    expect(second).to_have_attribute("data-status", "COMPLETE")
    second_id = second.get_attribute("data-id")
    expect(second.locator(".versions .position")).to_have_text("2/2")
    expect(chat.messages).to_have_count(2)  # the old reply is a version, not a new turn
    assert chat.stored(conversation_id)[-1]["id"] == second_id

    chat.last("assistant").locator("button.prev").click()
    shown = chat.last("assistant")
    expect(shown).to_have_attribute("data-id", first_id or "")
    expect(shown.locator(".text")).to_have_text(first_text or "")
    expect(shown.locator(".versions .position")).to_have_text("1/2")
    expect(shown.locator("button.prev")).to_be_disabled()
    assert chat.stored(conversation_id)[-1]["id"] == first_id

    shown.locator("button.next").click()
    expect(chat.last("assistant")).to_have_attribute("data-id", second_id or "")
    expect(chat.last("assistant").locator(".versions .position")).to_have_text("2/2")
    assert chat.stored(conversation_id)[-1]["id"] == second_id


def test_an_edit_starts_a_branch_and_the_old_one_stays(chat: ChatPage) -> None:
    conversation_id = chat.open_new_via_api("Greetings", maxTokens=12)
    chat.send("Say hello.")
    old_reply_id = chat.wait_until_settled().get_attribute("data-id")
    old_user = chat.last("user")
    old_user_id = old_user.get_attribute("data-id")

    old_user.locator("button.edit").click()
    editor = old_user.locator(".editor textarea")
    expect(editor).to_have_value("Say hello.")
    editor.fill("Say goodbye.")
    old_user.locator(".editor button[type=submit]").click()

    reply = chat.wait_until_settled()
    expect(reply).to_have_attribute("data-status", "COMPLETE")
    mine = chat.last("user")
    expect(mine.locator(".text")).to_have_text("Say goodbye.")
    expect(mine.locator(".versions .position")).to_have_text("2/2")
    expect(chat.messages).to_have_count(2)
    stored = chat.stored(conversation_id)
    assert stored[0]["text"] == "Say goodbye."
    assert [m["id"] for m in stored] == [
        mine.get_attribute("data-id"),
        reply.get_attribute("data-id"),
    ]

    mine_id = mine.get_attribute("data-id")
    mine.locator("button.prev").click()
    expect(chat.last("user")).to_have_attribute("data-id", old_user_id or "")
    expect(chat.last("user").locator(".text")).to_have_text("Say hello.")
    expect(chat.last("assistant")).to_have_attribute("data-id", old_reply_id or "")
    assert [m["id"] for m in chat.stored(conversation_id)] == [old_user_id, old_reply_id]

    # Search finds the edit while the old branch is shown, and its hit brings it back.
    chat.page.fill("#search-query", "goodbye")
    hits = chat.page.locator("#search-hits .hit")
    hits.filter(has=chat.page.locator(".where", has_text="You")).click()
    found = chat.page.locator("#messages .message.found")
    expect(found).to_have_attribute("data-id", mine_id or "")
    expect(found.locator(".versions .position")).to_have_text("2/2")
    assert chat.stored(conversation_id)[0]["id"] == mine_id
