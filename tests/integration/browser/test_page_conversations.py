"""The chat page in a real browser: search, the context gauge, rename and delete, and
that no text, whoever wrote it, is ever rendered as markup."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect
from tests.integration.browser.chat_page import ChatPage
from tests.integration.browser.conftest import CONTEXT_SIZE

pytestmark = [pytest.mark.model, pytest.mark.slow]

USAGE = """query($id: ID!, $text: String) { contextUsage(conversationId: $id, text: $text) {
  contextSize promptTokens replyTokens droppedMessages fits } }"""
# Would run script, load an image or make elements if any of it reached innerHTML.
HOSTILE = '<img src=x onerror="window.pwned=1"><b id="bold">bold</b><script>window.pwned=2</script>'
# Elements the page itself never makes; the only <script> it has is its own (with src).
MARKUP = "img, b, #bold, script:not([src]), iframe"


def test_search_finds_a_message_and_opens_it(chat: ChatPage) -> None:
    word = f"quokka{uuid.uuid4().hex[:8]}"
    conversation_id = chat.open_new_via_api("Marsupials", maxTokens=8)
    chat.send(f"Tell me about the {word}, please.")
    chat.wait_until_settled()
    chat.create("Elsewhere")  # open another conversation first

    chat.page.fill("#search-query", word)
    hits = chat.page.locator("#search-hits .hit")
    expect(hits).to_have_count(1)
    expect(chat.page.locator("#search-total")).to_have_text("(1)")
    expect(hits.locator(".title")).to_have_text("Marsupials")
    expect(hits.locator(".where")).to_have_text("You")
    expect(hits.locator(".snippet mark")).to_have_text(word)
    expect(hits.locator(".snippet")).to_contain_text(f"Tell me about the {word}")

    hits.click()
    expect(chat.page.locator("#conv-title")).to_have_text("Marsupials")
    found = chat.page.locator("#messages .message.found")
    expect(found).to_have_count(1)
    expect(found.locator(".text")).to_have_text(f"Tell me about the {word}, please.")
    assert found.get_attribute("data-id") == chat.stored(conversation_id)[0]["id"]

    # Titles match too; the list follows the words as they are typed.
    chat.page.fill("#search-query", "marsupial")
    expect(hits).to_have_count(1)
    expect(hits.locator(".where")).to_have_text("Title")
    chat.page.click("#search-clear")
    expect(chat.page.locator("#search-results")).to_be_hidden()


def test_search_shows_only_your_own_text(chat: ChatPage) -> None:
    chat.open_new_via_api("Wombat burrows", maxTokens=4)
    chat.page.click(".settings summary")
    chat.page.click("#new-user")  # another user, in the same browser
    chat.page.fill("#search-query", "wombat")
    chat.page.press("#search-query", "Enter")
    expect(chat.page.locator("#search-total")).to_have_text("(0)")
    expect(chat.page.locator("#search-hits .hit")).to_have_count(0)


def test_the_gauge_follows_what_is_typed(chat: ChatPage) -> None:
    conversation_id = chat.open_new_via_api("Gauge", maxTokens=64)
    gauge = chat.page.locator("#gauge-text")
    shows = f"{{}} prompt + 64 reply tokens of {CONTEXT_SIZE}"
    bare = chat.api(USAGE, id=conversation_id)["contextUsage"]
    expect(gauge).to_have_text(shows.format(bare["promptTokens"]))

    text = "pebble " * 200
    chat.page.fill("#text", text)
    typed = chat.api(USAGE, id=conversation_id, text=text)["contextUsage"]
    assert typed["promptTokens"] > bare["promptTokens"] + 150
    expect(gauge).to_have_text(
        f"{typed['promptTokens']} prompt + 64 reply tokens of {CONTEXT_SIZE}"
    )
    expect(chat.page.locator("#gauge")).to_have_attribute("data-fits", "true")

    chat.page.fill("#text", "pebble " * 2000)
    expect(gauge).to_contain_text("too long for the context")
    expect(chat.page.locator("#gauge")).to_have_attribute("data-fits", "false")
    assert chat.page.eval_on_selector("#gauge-meter", "m => m.value") == CONTEXT_SIZE


def test_a_refused_message_shows_its_code_and_gives_the_text_back(chat: ChatPage) -> None:
    conversation_id = chat.open_new_via_api("Too long", maxTokens=64)
    text = "pebble " * 2000
    chat.send(text)
    expect(chat.page.locator("#error")).to_contain_text("CONTEXT_OVERFLOW")
    expect(chat.page.locator("#status")).to_have_text("Failed.")
    expect(chat.messages).to_have_count(0)
    expect(chat.page.locator("#text")).to_have_value(text)
    assert chat.stored(conversation_id) == []
    expect(chat.page.locator("#send")).to_be_enabled()


def test_rename_and_delete(chat: ChatPage) -> None:
    conversation_id = chat.create("Draft")
    chat.page.fill("#rename-title", "Final notes")
    chat.page.click("#rename-form button[type=submit]")
    expect(chat.page.locator("#conv-title")).to_have_text("Final notes")
    expect(chat.sidebar_item(conversation_id).locator(".title")).to_have_text("Final notes")
    assert chat.api("query($id: ID!) { conversation(id: $id) { title } }", id=conversation_id) == {
        "conversation": {"title": "Final notes"}
    }

    chat.page.click("#delete")  # the confirmation is accepted by the page fixture
    expect(chat.page.locator("#messages")).to_have_text("Conversation deleted.")
    expect(chat.sidebar_item(conversation_id)).to_have_count(0)
    expect(chat.page.locator("#total")).to_have_text("(0)")
    assert chat.api("query($id: ID!) { conversation(id: $id) { id } }", id=conversation_id) == {
        "conversation": None
    }


def test_no_text_is_ever_rendered_as_markup(chat: ChatPage) -> None:
    # A title typed by the user.
    titled = chat.create(HOSTILE)
    expect(chat.page.locator("#conv-title")).to_have_text(HOSTILE)
    expect(chat.sidebar_item(titled).locator(".title")).to_have_text(HOSTILE)

    # A message typed by the user, and replies with markup in them written by the model
    # (greedy, so the same each run).
    chat.open_new_via_api("Markup", temperature=0.0, maxTokens=60)
    chat.send(HOSTILE)
    chat.wait_until_settled()
    expect(chat.last("user").locator(".text")).to_have_text(HOSTILE)
    chat.send("Write an HTML img tag and a b tag.")
    reply = chat.wait_until_settled()
    reply_text = reply.locator(".text").text_content() or ""
    assert "<" in reply_text, reply_text  # else this part proves nothing
    expect(reply.locator(".text *")).to_have_count(0)

    # Search results: titles and snippets.
    chat.page.fill("#search-query", "bold")
    hits = chat.page.locator("#search-hits .hit")
    title_hit = hits.filter(has=chat.page.locator(".where", has_text="Title"))
    expect(title_hit.locator(".title")).to_have_text(HOSTILE)
    message_hit = hits.filter(has=chat.page.locator(".where", has_text="You"))
    expect(message_hit.locator(".snippet")).to_contain_text('<b id="bold">')

    assert chat.page.locator(MARKUP).count() == 0
    assert chat.page.evaluate("window.pwned") is None
