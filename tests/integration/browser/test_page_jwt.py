"""The chat page in a real browser against a `LLAMAQL_AUTH=jwt` server (HS256 secret):
without a token it is refused and shows nothing; with one (Settings, kept in
sessionStorage) it sends `Authorization: Bearer` on HTTP and in connection_init, never
X-User-ID, and is the token's subject; expired or forged tokens are refused with a
message asking for a new one; a token that expires mid-reply closes the page's socket,
and a fresh one for the same user reconnects and follows the reply to its end.

The module replaces the browser conftest's `page_server` with a jwt-mode server, so its
`page` fixture (fresh context, no script errors, a screenshot) is reused as it is.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from playwright.sync_api import Page, WebSocket, expect
from tests.integration.browser.chat_page import ChatPage
from tests.integration.browser.conftest import CONTEXT_SIZE
from tests.integration.chat.live import LONG_OPTIONS, LONG_TEXT, Server, served

from llamaql.auth.bearer import LEEWAY_S, subject_user_id

pytestmark = [pytest.mark.model, pytest.mark.slow]

SECRET = "browser-test-secret-of-at-least-32-bytes"
ISSUER = "https://id.example"
AUDIENCE = "llamaql"
CREATE = """mutation($input: CreateConversationInput) {
  createConversation(input: $input) { id } }"""
COUNT = "{ conversations { totalCount } }"
MESSAGES = """query($id: ID!) { conversation(id: $id) {
  messages(first: 100) { edges { node { role text status } } } } }"""
UPDATE = """mutation($id: ID!, $input: UpdateConversationInput!) {
  updateConversation(id: $id, input: $input) { id } }"""
LISTED = "#conversations .conversation"
# How long the short-lived token of the expiry test is accepted once made.
EXPIRES_SOON_S = 4
REFUSED = "The bearer token was refused: enter a new token in Settings."
NEEDED = "This server needs a bearer token: enter one in Settings."


@pytest.fixture(scope="module")
def page_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Overrides the conftest's header-mode server for this module's tests."""
    env = {
        "LLAMAQL_AUTH": "jwt",
        "LLAMAQL_JWT_SECRET": SECRET,
        "LLAMAQL_JWT_ISSUER": ISSUER,
        "LLAMAQL_JWT_AUDIENCE": AUDIENCE,
        "LLAMAQL_CONTEXT_SIZE": str(CONTEXT_SIZE),
        "LLAMAQL_AUTO_TITLE": "false",
    }
    with served(tmp_path_factory.mktemp("page-jwt-server"), "page", env) as server:
        yield server


def token(sub: str, *, key: str = SECRET, expires_in: int = 600) -> str:
    claims = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + expires_in}
    return jwt.encode(claims, key, "HS256")


def subject() -> str:
    """A subject of its own per test, not a UUID: the server maps it to one."""
    return f"user-{uuid.uuid4().hex[:8]}@example.com"


def api(server: Server, bearer: str, query: str, **variables: Any) -> dict[str, Any]:
    response = httpx.post(
        server.http_url,
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=60,
    )
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def create(server: Server, bearer: str, title: str) -> str:
    conversation_id: str = api(server, bearer, CREATE, input={"title": title})[
        "createConversation"
    ]["id"]
    return conversation_id


def use_token(page: Page, value: str) -> None:
    page.locator("details#settings").evaluate("details => { details.open = true; }")
    page.fill("#token", value)
    page.click("#token-form button[type=submit]")


def test_without_a_token_the_page_is_refused_and_lists_nothing(
    page: Page, page_server: Server
) -> None:
    someone = token(subject())
    create(page_server, someone, "Not for the page")
    page.reload()
    error = page.locator("#error")
    expect(error).to_contain_text("UNAUTHENTICATED")
    expect(error).to_contain_text(NEEDED)
    expect(page.locator("details#settings")).to_have_attribute("open", "")
    expect(page.locator(LISTED)).to_have_count(0)
    expect(page.locator("#token-clear")).to_be_hidden()

    # Creating from the page is refused too, and stores nothing for the page's own id.
    page.fill("#new-title", "Refused")
    page.click("#new-form button[type=submit]")
    expect(error).to_contain_text("UNAUTHENTICATED")
    expect(page.locator(LISTED)).to_have_count(0)
    kept_id = page.input_value("#user-id")
    assert api(page_server, token(kept_id), COUNT)["conversations"]["totalCount"] == 0


def test_a_token_names_its_subject_and_a_reply_streams(page: Page, page_server: Server) -> None:
    alice, bob = subject(), subject()
    alice_token, bob_token = token(alice), token(bob)
    create(page_server, alice_token, "Alice's plans")
    create(page_server, bob_token, "Bob's secret")

    sent_headers: list[dict[str, str]] = []
    frames_sent: list[str] = []
    frames_received: list[str] = []

    def watch(socket: WebSocket) -> None:
        socket.on("framesent", lambda payload: frames_sent.append(str(payload)))
        socket.on("framereceived", lambda payload: frames_received.append(str(payload)))

    page.on(
        "request",
        lambda request: (
            sent_headers.append(request.headers) if request.url.endswith("/graphql") else None
        ),
    )
    page.on("websocket", watch)

    use_token(page, alice_token)
    alice_id = str(subject_user_id(ISSUER, alice))
    expect(page.locator("#user-id")).to_have_value(alice_id)
    expect(page.locator(LISTED)).to_have_count(1)
    expect(page.locator(f"{LISTED} .title")).to_have_text(["Alice's plans"])
    expect(page.locator("#error")).to_be_hidden()
    # Never shown back in full: the field is emptied, the note shows only its end.
    expect(page.locator("#token")).to_have_value("")
    expect(page.locator("#token-note")).to_contain_text(f"…{alice_token[-4:]}")
    expect(page.locator("#token-clear")).to_be_visible()
    assert alice_token not in page.content()

    chat = ChatPage(page, page_server)
    conversation_id = chat.create("Streamed with a token")
    chat.send("Say hello in one short sentence.")
    reply = chat.wait_until_settled()
    expect(reply).to_have_attribute("data-status", "COMPLETE")

    stored = api(page_server, alice_token, MESSAGES, id=conversation_id)["conversation"]
    rows = [edge["node"] for edge in stored["messages"]["edges"]]
    assert [(m["role"], m["status"]) for m in rows] == [
        ("USER", "COMPLETE"),
        ("ASSISTANT", "COMPLETE"),
    ]
    assert rows[0]["text"] == "Say hello in one short sentence."
    assert rows[1]["text"].strip()
    assert [m["text"] for m in chat.shown()] == [m["text"] for m in rows]
    assert api(page_server, bob_token, MESSAGES, id=conversation_id)["conversation"] is None
    assert api(page_server, bob_token, COUNT)["conversations"]["totalCount"] == 1

    # Every request carried the token and no X-User-ID; so did the socket's connection_init,
    # and the reply came over it in TokenDelta events.
    assert sent_headers
    for headers in sent_headers:
        assert headers.get("authorization") == f"Bearer {alice_token}", headers
        assert "x-user-id" not in headers, headers
    inits = [json.loads(f) for f in frames_sent if '"connection_init"' in f]
    assert inits == [
        {"type": "connection_init", "payload": {"Authorization": f"Bearer {alice_token}"}}
    ]
    assert any('"TokenDelta"' in f for f in frames_received)

    # Kept for the tab (a reload still uses it), never in localStorage.
    assert page.evaluate("() => sessionStorage.getItem('llamaql.token')") == alice_token
    local = page.evaluate("() => JSON.stringify(Object.entries(localStorage))")
    assert alice_token not in local
    page.reload()
    expect(page.locator("#user-id")).to_have_value(alice_id)
    expect(page.locator(LISTED)).to_have_count(2)


def test_expired_and_forged_tokens_are_refused_and_show_nothing(
    page: Page, page_server: Server
) -> None:
    alice = subject()
    alice_token = token(alice)
    create(page_server, alice_token, "Alice's list")
    error = page.locator("#error")

    use_token(page, alice_token)
    expect(page.locator(f"{LISTED} .title")).to_have_text(["Alice's list"])

    expired = token(alice, expires_in=-3600)
    forged = token(alice, key="another-secret-that-is-also-32-bytes-long")
    for refused in (expired, forged):
        use_token(page, refused)
        expect(error).to_contain_text("UNAUTHENTICATED")
        expect(error).to_contain_text(REFUSED)
        expect(page.locator(LISTED)).to_have_count(0)
        expect(page.locator("#total")).to_have_text("")

    # Something that is not a token at all is refused before it is sent or kept.
    use_token(page, "not a token")
    expect(error).to_contain_text("BAD_USER_INPUT")
    assert page.evaluate("() => sessionStorage.getItem('llamaql.token')") == forged

    # Clearing the token goes back to the user id, which this server refuses.
    page.click("#token-clear")
    expect(error).to_contain_text(NEEDED)
    expect(page.locator(LISTED)).to_have_count(0)
    assert page.evaluate("() => sessionStorage.getItem('llamaql.token')") is None


def test_a_token_that_expires_mid_reply_is_renewed_and_the_reply_goes_on(
    page: Page, page_server: Server
) -> None:
    alice = subject()
    lasting = token(alice)
    conversation_id = create(page_server, lasting, "Token runs out")
    api(page_server, lasting, UPDATE, id=conversation_id, input={"options": LONG_OPTIONS})

    frames_sent: list[str] = []
    page.on(
        "websocket", lambda socket: socket.on("framesent", lambda f: frames_sent.append(str(f)))
    )
    # Accepted for a few more seconds only (its exp is already past, within the leeway):
    # the server closes the page's socket with 4403 while the reply streams.
    short = token(alice, expires_in=EXPIRES_SOON_S - LEEWAY_S)
    use_token(page, short)
    chat = ChatPage(page, page_server)
    chat.sidebar_item(conversation_id).click()
    chat.send(LONG_TEXT)
    expect(chat.last("assistant").locator(".text")).not_to_be_empty()

    error = page.locator("#error")
    expect(error).to_contain_text("UNAUTHENTICATED")
    expect(error).to_contain_text("token expired")
    expect(error).to_contain_text(REFUSED)
    expect(page.locator("details#settings")).to_have_attribute("open", "")

    # A fresh token for the same user: the page stays, reconnects and follows the reply,
    # which the closed socket did not stop.
    use_token(page, lasting)
    reply = chat.wait_until_settled()
    expect(reply).to_have_attribute("data-status", "COMPLETE")
    expect(error).to_be_hidden()
    stored = api(page_server, lasting, MESSAGES, id=conversation_id)["conversation"]
    rows = [edge["node"] for edge in stored["messages"]["edges"]]
    assert [(m["role"], m["status"]) for m in rows] == [
        ("USER", "COMPLETE"),
        ("ASSISTANT", "COMPLETE"),
    ]
    assert [m["text"] for m in chat.shown()] == [m["text"] for m in rows]
    inits = [json.loads(f)["payload"] for f in frames_sent if '"connection_init"' in f]
    assert inits[0] == {"Authorization": f"Bearer {short}"}
    assert inits[-1] == {"Authorization": f"Bearer {lasting}"}
