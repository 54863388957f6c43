"""The chat page as a user sees it, for the browser tests: what they click and type, and
what the page shows. Checks of what the server stored go over HTTP as the page's user."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Locator, Page, expect
from tests.integration.chat.live import Server

MESSAGES = """query($id: ID!) { conversation(id: $id) { title
  messages(first: 100) { edges { node { id role text status siblingIds } } } } }"""
CREATE = """mutation($input: CreateConversationInput) {
  createConversation(input: $input) { id } }"""


class ChatPage:
    def __init__(self, page: Page, server: Server) -> None:
        self.page = page
        self.server = server

    # ---- the server's side, as this page's user ----------------------------------------

    @property
    def user_id(self) -> str:
        return self.page.input_value("#user-id")

    def api(self, query: str, **variables: Any) -> dict[str, Any]:
        response = httpx.post(
            self.server.http_url,
            json={"query": query, "variables": variables},
            headers={"X-User-ID": self.user_id},
            timeout=60,
        )
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    def stored(self, conversation_id: str) -> list[dict[str, Any]]:
        """The conversation's current branch as the server has it."""
        conversation = self.api(MESSAGES, id=conversation_id)["conversation"]
        return [edge["node"] for edge in conversation["messages"]["edges"]]

    def open_new_via_api(self, title: str, **options: Any) -> str:
        """A conversation with these generation options (the page has no options form),
        opened on the page the way a user would: from the sidebar after a reload."""
        created = self.api(CREATE, input={"title": title, "options": options})
        conversation_id: str = created["createConversation"]["id"]
        self.page.reload()
        self.sidebar_item(conversation_id).click()
        expect(self.page.locator("#conv-title")).to_have_text(title)
        return conversation_id

    # ---- what the user does --------------------------------------------------------------

    def create(self, title: str) -> str:
        """A conversation made with the sidebar's New form; returns its id."""
        self.page.fill("#new-title", title)
        self.page.click("#new-form button[type=submit]")
        current = self.page.locator("#conversations .conversation[aria-current=true]")
        expect(current.locator(".title")).to_have_text(title)
        conversation_id = current.get_attribute("data-id")
        assert conversation_id is not None
        # Opened to the end: the page then focuses the message box, which would take
        # over the typing of whatever the test does next if that came first.
        expect(self.page.locator("#send")).to_be_enabled()
        return conversation_id

    def send(self, text: str) -> None:
        # Send is enabled once the open conversation's messages are on the page.
        expect(self.page.locator("#send")).to_be_enabled()
        self.page.fill("#text", text)
        self.page.press("#text", "Enter")

    def sidebar_item(self, conversation_id: str) -> Locator:
        return self.page.locator(f'#conversations .conversation[data-id="{conversation_id}"]')

    # ---- what the page shows -------------------------------------------------------------

    @property
    def messages(self) -> Locator:
        return self.page.locator("#messages .message")

    def last(self, role: str) -> Locator:
        return self.page.locator(f"#messages .message.{role}").last

    def wait_until_settled(self) -> Locator:
        """Waits until no reply is streaming; returns the last reply's element."""
        expect(self.page.locator("#stop")).to_be_hidden()
        expect(self.page.locator("#send")).to_be_enabled()
        reply = self.last("assistant")
        expect(reply).not_to_have_attribute("data-status", "GENERATING")
        return reply

    def shown(self) -> list[dict[str, str | None]]:
        """Each message on the page: its id, role, status and text."""
        rows: list[dict[str, str | None]] = self.page.eval_on_selector_all(
            "#messages .message",
            """elements => elements.map(e => ({
                id: e.dataset.id ?? null,
                role: e.classList.contains('user') ? 'USER' : 'ASSISTANT',
                status: e.dataset.status,
                text: e.querySelector('.text').textContent }))""",
        )
        return rows
