"""The terminal client's pure parts: inert output, identity, URLs, error parsing, the
command line's refusals."""

from __future__ import annotations

import io
import socket
import sys
import uuid

import pytest

from llamaql import cli
from llamaql.client.api import Identity, IdentityError, first_error, websocket_url
from llamaql.client.console import Console, inert

USER = "6f1c0c0e-4a53-4a7e-9a4e-2b1f3f0c8d11"


@pytest.mark.parametrize(
    ("hostile", "shown"),
    [
        ("\x1b]0;pwned\x07title", "]0;pwnedtitle"),  # OSC: set the window title
        ("\x1b[2J\x1b[Hclear", "[2J[Hclear"),  # erase the screen, cursor home
        ("over\rwrite", "overwrite"),  # carriage return rewrites the line
        ("\x9b31mred", "31mred"),  # C1 CSI, one byte
        ("back\x08\x08space\x7f", "backspace"),
        ("safe\u202eevil", "safeevil"),  # right-to-left override
        ("lines\nand\ttabs stay", "lines\nand\ttabs stay"),
        ("Paris, Île-de-France 🇫🇷", "Paris, Île-de-France 🇫🇷"),
    ],
)
def test_inert_drops_what_a_terminal_would_act_on(hostile: str, shown: str) -> None:
    assert inert(hostile) == shown


def test_console_starts_a_new_line_after_an_open_reply() -> None:
    stream = io.StringIO()
    console = Console(stream)
    console.write("partial reply")
    console.line("[cancelled]")
    console.line("next")
    assert stream.getvalue() == "partial reply\n[cancelled]\nnext\n"


def test_identity_headers_for_both_auth_modes() -> None:
    assert Identity.of(USER, None).headers() == {"X-User-ID": USER}
    assert Identity.of(None, " tok ").headers() == {"Authorization": "Bearer tok"}


@pytest.mark.parametrize(
    ("user", "token", "says"),
    [(None, None, "no identity"), ("", "  ", "no identity"), ("alice", None, "not a UUID")],
)
def test_identity_refused_before_anything_is_sent(
    user: str | None, token: str | None, says: str
) -> None:
    with pytest.raises(IdentityError, match=says):
        Identity.of(user, token)


def test_websocket_url_follows_the_http_scheme() -> None:
    assert websocket_url("http://h:8000/graphql") == "ws://h:8000/graphql"
    assert websocket_url("https://h/graphql") == "wss://h/graphql"
    with pytest.raises(ValueError, match="ftp://h"):
        websocket_url("ftp://h")


def test_first_error_keeps_the_servers_code_and_message() -> None:
    body = {
        "errors": [{"message": "conversation x not found", "extensions": {"code": "NOT_FOUND"}}]
    }
    error = first_error(body)
    assert (error.code, error.message) == ("NOT_FOUND", "conversation x not found")
    assert first_error({"errors": [{}]}).code == "INTERNAL"


def test_chat_without_identity_exits_2_saying_how(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LLAMAQL_USER_ID", raising=False)
    monkeypatch.delenv("LLAMAQL_TOKEN", raising=False)
    assert cli.main(["chat"]) == 2
    assert "--user" in capsys.readouterr().err


def test_chat_with_a_bad_url_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLAMAQL_USER_ID", str(uuid.uuid4()))
    assert cli.main(["chat", "--url", "localhost:8000"]) == 2
    assert "'localhost:8000'" in capsys.readouterr().err


def test_chat_reports_an_unreachable_server_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/graphql"
    assert cli.main(["chat", "--user", USER, "--url", url]) == 1
    assert f"error UNREACHABLE: {url}" in capsys.readouterr().err


def test_model_rows_say_state_size_quantization_and_default() -> None:
    from llamaql.client.models import model_line, size_text

    assert (size_text(0), size_text(512), size_text(98_362_432)) == ("?", "512 B", "98.4 MB")
    local = {
        "name": "smol",
        "loaded": True,
        "loading": False,
        "fileSize": 98_362_432,
        "quantization": "Q4_1",
        "default": True,
    }
    assert model_line(local, current="smol") == "* smol  (loaded, 98.4 MB, Q4_1, default)"
    remote = {**local, "name": "r", "fileSize": 0, "quantization": "unknown", "default": False}
    assert model_line({**remote, "loaded": False}, current="smol") == "  r  (not loaded, ?)"
    assert model_line({**remote, "loading": True}, current=None) == "  r  (loading, ?)"


def test_chat_whose_token_command_fails_exits_2_saying_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("LLAMAQL_USER_ID", "LLAMAQL_TOKEN", "LLAMAQL_TOKEN_COMMAND"):
        monkeypatch.delenv(name, raising=False)
    failing = f"{sys.executable} -c \"import sys; sys.exit('not logged in')\""
    assert cli.main(["chat", "--token-command", failing]) == 2
    assert "the token command failed (exit status 1): not logged in" in capsys.readouterr().err


def test_chat_takes_its_first_token_from_the_token_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("LLAMAQL_USER_ID", "LLAMAQL_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as probe:  # nothing listens: the greeting fails after the token
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/graphql"
    monkeypatch.setenv("LLAMAQL_TOKEN_COMMAND", f"{sys.executable} -c \"print('abc.def.ghi')\"")
    assert cli.main(["chat", "--url", url]) == 1
    assert f"error UNREACHABLE: {url}" in capsys.readouterr().err
