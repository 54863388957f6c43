"""Search snippets as parts: from FTS5's marked text, or built from text and terms."""

from __future__ import annotations

from llamaql.persistence.repositories.snippets import (
    CLOSE,
    ELLIPSIS,
    MAX_SNIPPET_CHARS,
    OPEN,
    SNIPPET_WORDS,
    parse_marked,
    snippet_of,
)
from llamaql.ports.search import SnippetPart


def _show(parts: tuple[SnippetPart, ...]) -> str:
    return "".join(f"[{p.text}]" if p.highlighted else p.text for p in parts)


def test_marked_text_splits_into_parts() -> None:
    parts = parse_marked(f"{ELLIPSIS}the {OPEN}otter{CLOSE} and {OPEN}otters{CLOSE}!")
    assert parts == (
        SnippetPart(f"{ELLIPSIS}the ", False),
        SnippetPart("otter", True),
        SnippetPart(" and ", False),
        SnippetPart("otters", True),
        SnippetPart("!", False),
    )


def test_stray_marks_never_fail() -> None:
    assert _show(parse_marked(f"{CLOSE}a{OPEN}{OPEN}b")) == "a[b]"
    assert parse_marked("") == ()


def test_short_text_is_whole_with_prefix_matches_highlighted() -> None:
    assert _show(snippet_of("Paris, paris <b>PARISIAN</b> spar", ["pari"])) == (
        "[Paris], [paris] <b>[PARISIAN]</b> spar"
    )


def test_long_text_is_cut_around_the_first_match() -> None:
    words = [f"w{i}" for i in range(100)]
    words[50] = "needle"
    parts = snippet_of(" ".join(words), ["needle"])
    shown = _show(parts)
    assert shown.startswith(ELLIPSIS)
    assert shown.endswith(ELLIPSIS)
    assert "[needle]" in shown
    assert len(shown.split()) == SNIPPET_WORDS


def test_no_words_or_no_match_gives_the_start() -> None:
    assert _show(snippet_of("🙂🙂", ["x"])) == "🙂🙂"
    assert _show(snippet_of("alpha beta", ["zeta"])) == "alpha beta"
    assert snippet_of("", ["x"]) == ()


def test_huge_words_are_capped_and_the_match_kept() -> None:
    parts = snippet_of("x" * 5000 + " needle " + "y" * 5000, ["needle"])
    assert sum(len(p.text) for p in parts) <= MAX_SNIPPET_CHARS + len(ELLIPSIS)
    assert SnippetPart("needle", True) in parts
    shown = _show(parts)
    assert shown.startswith(ELLIPSIS + "x")
    assert shown.endswith("y" + ELLIPSIS)
