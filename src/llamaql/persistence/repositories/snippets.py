"""Search snippets as parts: plain text pieces, the matched words flagged.

SQLite's FTS5 `snippet()` marks matches with two noncharacters that `parse_marked`
splits on. PostgreSQL's `ts_headline` is not used: its parser reads anything shaped like
an HTML tag (`<div>`, `<b>`) as markup and leaves it out of the headline, which would
show users text they never wrote. `snippet_of` builds the same kind of excerpt from the
text and the search terms instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from llamaql.ports.search import SnippetPart

# Unicode noncharacters, meant for a program's internal use: they mark matched words in
# the database's snippet and never reach a client.
OPEN, CLOSE = "\ufdd0", "\ufdd1"
ELLIPSIS = "…"
SNIPPET_WORDS = 24
MAX_SNIPPET_CHARS = 400
_MARKS = re.compile(f"([{OPEN}{CLOSE}])")
_WORD = re.compile(r"[^\W_]+")


def parse_marked(marked: str) -> tuple[SnippetPart, ...]:
    """Split a snippet whose matches sit between OPEN and CLOSE into parts."""
    parts: list[SnippetPart] = []
    highlighted = False
    for piece in _MARKS.split(marked):
        if piece in (OPEN, CLOSE):
            highlighted = piece == OPEN
        elif piece:
            _append(parts, piece, highlighted)
    return _capped(parts)


def snippet_of(body: str, terms: Sequence[str]) -> tuple[SnippetPart, ...]:
    """About SNIPPET_WORDS words around the first word that a term begins, every such
    word highlighted, with an ellipsis where the text was cut."""
    prefixes = tuple(term.lower() for term in terms)
    words = [
        (m.start(), m.end(), m.group().lower().startswith(prefixes)) for m in _WORD.finditer(body)
    ]
    if not words:
        return _capped([SnippetPart(body, False)] if body else [])
    first = next((i for i, (_, _, hit) in enumerate(words) if hit), 0)
    start = max(0, min(first - SNIPPET_WORDS // 4, len(words) - SNIPPET_WORDS))
    window = words[start : start + SNIPPET_WORDS]
    begin = 0 if start == 0 else window[0][0]
    end = len(body) if start + SNIPPET_WORDS >= len(words) else window[-1][1]
    parts: list[SnippetPart] = []
    if begin > 0:
        _append(parts, ELLIPSIS, False)
    position = begin
    for word_start, word_end, hit in window:
        if hit:
            _append(parts, body[position:word_start], False)
            _append(parts, body[word_start:word_end], True)
            position = word_end
    _append(parts, body[position:end], False)
    if end < len(body):
        _append(parts, ELLIPSIS, False)
    return _capped(parts)


def _append(parts: list[SnippetPart], text: str, highlighted: bool) -> None:
    if not text:
        return
    if parts and parts[-1].highlighted == highlighted:
        text = parts.pop().text + text
    parts.append(SnippetPart(text, highlighted))


def _capped(parts: list[SnippetPart]) -> tuple[SnippetPart, ...]:
    # A "word" can be a pasted blob thousands of characters long: keep a little of the
    # text before the first match, then cut the whole at MAX_SNIPPET_CHARS.
    first = next((i for i, part in enumerate(parts) if part.highlighted), 0)
    before = "".join(part.text for part in parts[:first])
    lead = MAX_SNIPPET_CHARS // 4
    if len(before) > lead:
        parts = [SnippetPart(ELLIPSIS + before[-lead:], False), *parts[first:]]
    capped: list[SnippetPart] = []
    left = MAX_SNIPPET_CHARS
    for part in parts:
        if len(part.text) > left:
            _append(capped, part.text[:left], part.highlighted)
            _append(capped, ELLIPSIS, False)
            break
        _append(capped, part.text, part.highlighted)
        left -= len(part.text)
    return tuple(capped)
