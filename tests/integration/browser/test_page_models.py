"""The chat page's model picker on a server with two models (the default and a Q8_0 copy):
a new conversation created with the second model, its reply named with that model after
"loading model…" while it loaded, and the open conversation switched back to the
server's default."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from tests.integration.browser.chat_page import ChatPage
from tests.integration.chat.live import DEFAULT_MODEL_PATH
from tests.integration.model_files import SECOND_MODEL

pytestmark = [pytest.mark.model, pytest.mark.slow]

# Records every text the status line shows, from outside the page's own code.
WATCH_STATUS = """() => {
  const status = document.getElementById('status');
  window.statuses = [];
  new MutationObserver(() => window.statuses.push(status.textContent))
    .observe(status, { childList: true, subtree: true, characterData: true });
}"""
CONVERSATION = """query($id: ID!) { conversation(id: $id) { model
  messages(first: 10) { edges { node { role model } } } } }"""


def test_a_conversation_picks_a_model_and_each_reply_names_its_own(
    models_chat: ChatPage,
) -> None:
    chat = models_chat
    default = DEFAULT_MODEL_PATH.stem
    new_model = chat.page.locator("#new-model")
    expect(new_model.locator(f'option[value="{SECOND_MODEL}"]')).to_have_count(1)
    expect(new_model.locator('option[value=""]')).to_have_text(f"Server default ({default})")
    new_model.select_option(SECOND_MODEL)
    conversation_id = chat.create("Quantized")
    expect(chat.page.locator("#model-picker")).to_have_value(SECOND_MODEL)
    expect(new_model).to_have_value("")  # the next new conversation: the default again

    chat.page.evaluate(WATCH_STATUS)
    chat.send("Say hello.")
    reply = chat.wait_until_settled()
    expect(reply).to_have_attribute("data-status", "COMPLETE")
    expect(reply.locator(".model-name")).to_have_text(SECOND_MODEL)
    # The second model was not loaded: the page said so while it loaded.
    assert f"Loading model {SECOND_MODEL}…" in chat.page.evaluate("window.statuses")
    stored = chat.api(CONVERSATION, id=conversation_id)["conversation"]
    assert stored["model"] == SECOND_MODEL
    assert [e["node"]["model"] for e in stored["messages"]["edges"]] == [None, SECOND_MODEL]
    # Now loaded: the picker says so when it lists the models again.
    expect(chat.page.locator(f'#model-picker option[value="{SECOND_MODEL}"]')).to_have_text(
        f"{SECOND_MODEL} · loaded"
    )

    # Back to the server's default from the header's picker; the next reply is the default's.
    chat.page.locator("#model-picker").select_option("")
    expect(chat.page.locator("#status")).to_have_text(f"Replies now come from {default}.")
    assert chat.api(CONVERSATION, id=conversation_id)["conversation"]["model"] is None
    chat.send("And again?")
    reply = chat.wait_until_settled()
    expect(reply.locator(".model-name")).to_have_text(default)
    expect(chat.messages.nth(1).locator(".model-name")).to_have_text(SECOND_MODEL)
    # After a reload, each stored reply still names its model.
    chat.page.reload()
    chat.sidebar_item(conversation_id).click()
    expect(chat.page.locator("#model-picker")).to_have_value("")
    expect(chat.page.locator("#messages .message.assistant .model-name")).to_have_text(
        [SECOND_MODEL, default]
    )
