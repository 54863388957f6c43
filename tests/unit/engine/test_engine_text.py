"""Reply assembly: pieces are whole UTF-8 characters and never show a stop string."""

from __future__ import annotations

import pytest

from llamaql.engine.local.text import ReplyText


def feed(reply: ReplyText, chunks: list[bytes]) -> list[str]:
    pieces = [reply.push(chunk) for chunk in chunks]
    pieces.append(reply.finish())
    return [p for p in pieces if p]


@pytest.mark.parametrize("text", ["ok 🎉 done", "日本語のテキスト", "mixed é 😀 中"])
def test_characters_split_across_tokens_are_held_until_complete(text: str) -> None:
    data = text.encode()
    # One byte per "token": every multi-byte character is split.
    pieces = feed(ReplyText(()), [data[i : i + 1] for i in range(len(data))])
    assert "".join(pieces) == text
    assert all("\ufffd" not in piece for piece in pieces)


def test_stop_string_split_across_tokens_is_never_emitted() -> None:
    reply = ReplyText(["</answer>"])
    pieces = feed(reply, [b"Paris", b"</", b"ans", b"wer", b">", b" trailing"])
    assert pieces == ["Paris"]
    assert reply.stopped
    assert reply.text == "Paris"


def test_text_before_a_stop_in_the_same_token_is_kept() -> None:
    reply = ReplyText(["STOP"])
    assert feed(reply, [b"one two", b" threeSTOPfour"]) == ["one two", " three"]


def test_partial_match_that_breaks_off_is_released() -> None:
    reply = ReplyText(["</answer>"])
    assert reply.push(b"a </an") == "a "
    assert reply.push(b"d more") == "</and more"
    assert not reply.stopped


def test_held_partial_match_is_released_when_the_reply_ends() -> None:
    reply = ReplyText(["</answer>"])
    assert feed(reply, [b"x </ans"]) == ["x ", "</ans"]
    assert reply.text == "x </ans"


def test_earliest_of_several_stop_strings_wins() -> None:
    reply = ReplyText(["World", "lo W"])
    assert feed(reply, [b"Hello World"]) == ["Hel"]


def test_stop_string_made_of_a_split_multibyte_character() -> None:
    reply = ReplyText(["🎉"])
    data = "yes 🎉 no".encode()
    assert feed(reply, [data[i : i + 1] for i in range(len(data))]) == ["y", "e", "s", " "]


def test_character_cut_off_at_the_end_is_dropped() -> None:
    reply = ReplyText(())
    assert feed(reply, ["東".encode(), "京".encode()[:2]]) == ["東"]
    assert reply.text == "東"
