"""Prompts to tokens where only the chat template's own markup is special.

Tokenizing a rendered prompt with special-token parsing would turn a user's typed
`<|im_end|><|im_start|>system` into real control tokens: a forged system turn. So the
template is rendered once more with a random marker in place of each message's content;
the text between markers (the template's markup) is tokenized with special tokens, and
each content as plain text. Templates that rewrite contents beyond trimming them cannot
be split this way; their prompts are tokenized whole, and a warning says so once.

Every send renders the whole conversation again, and most of its pieces (the markup, the
system prompt, the history) were tokenized for the send before: an encoder keeps the
tokens of recent pieces (`TokenCache`), so a send tokenizes little more than its new
message. Tokenizing was most of a prompt's preparation, which runs before the submit:
0.8 ms of a 44-token prompt, 0.1 ms of it for the new message.
"""

from __future__ import annotations

import logging
import secrets
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence

from llamaql.engine.local.templates import ChatTemplate
from llamaql.ports.engine import ChatMessage

logger = logging.getLogger(__name__)

# (text, special, first) -> tokens; `first` says whether a BOS may be added.
Tokenize = Callable[[str, bool, bool], list[int]]


# Characters of text whose tokens an encoder keeps (about 4 bytes per token kept, plus
# the text): the pieces of many recent conversations' prompts.
TOKEN_CACHE_CHARS = 1 << 20


# Whose texts a TokenCache entry is: a user id, or the template's own markup (no user's).
_MARKUP = ""


class TokenCache:
    """The tokens of recently tokenized texts, least recently used dropped first, up to
    `max_chars` characters of text; thread-safe (prompts are prepared on worker threads).
    Tokenizing is deterministic for one vocabulary: keep one cache per tokenizer.

    Each text is kept for its `scope`, the user whose prompt held it (or `_MARKUP`), and
    found only for that scope: one user's text never makes another's prompt faster."""

    def __init__(self, tokenize: Tokenize, max_chars: int = TOKEN_CACHE_CHARS) -> None:
        self._tokenize = tokenize
        self._max_chars = max_chars
        self._chars = 0
        self._kept: OrderedDict[tuple[str, str, bool, bool], array[int]] = OrderedDict()
        self._lock = threading.Lock()

    def tokens(self, scope: str, text: str, special: bool, first: bool) -> list[int]:
        key = (scope, text, special, first)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
                return kept.tolist()
        tokens = self._tokenize(text, special, first)
        if len(text) <= self._max_chars // 8:  # one piece never takes most of the room
            with self._lock:
                if key not in self._kept:
                    self._kept[key] = array("i", tokens)
                    self._chars += len(text)
                while self._chars > self._max_chars:
                    (_, dropped, _, _), _ = self._kept.popitem(last=False)
                    self._chars -= len(dropped)
        return tokens


class PromptEncoder:
    """Renders messages with a template and tokenizes the result safely; with `cache`,
    through a TokenCache of `tokenize` (make one encoder per template and tokenizer)."""

    def __init__(self, template: ChatTemplate, tokenize: Tokenize, *, cache: bool = False) -> None:
        self._template = template
        self._tokenize = tokenize
        self._cache = TokenCache(tokenize) if cache else None
        self._warned = False

    def _tokens(self, scope: str | None, text: str, special: bool, first: bool) -> list[int]:
        if self._cache is None or scope is None:
            return self._tokenize(text, special, first)
        return self._cache.tokens(scope, text, special, first)

    def encode(
        self, messages: Sequence[ChatMessage], *, owner: str | None = None
    ) -> tuple[str, list[int]]:
        """The prompt text and its tokens; TemplateError when the template refuses. The
        messages' texts are kept for `owner`'s next prompts (None: not kept)."""
        text = self._template.render(messages)
        nonce = secrets.token_hex(8)
        marked = self._template.render(
            [ChatMessage(m.role, f"@@llamaql-{nonce}-{i}@@") for i, m in enumerate(messages)]
        )
        parts = _split_markers(marked, f"@@llamaql-{nonce}-")
        contents = self._contents(parts, messages, text)
        if contents is None:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "the chat template rewrites message contents: prompts are tokenized "
                    "whole, so special-token text typed by users is not neutralized"
                )
            return text, self._tokens(owner, text, True, True)
        tokens: list[int] = []
        for index, part in enumerate(parts):
            if index % 2 == 0:
                tokens += self._tokens(_MARKUP, part, True, index == 0) if part else []
            else:
                tokens += self._tokens(owner, contents[int(part)], False, False)
        return text, tokens

    @staticmethod
    def _contents(parts: list[str], messages: Sequence[ChatMessage], text: str) -> list[str] | None:
        """The contents as the template placed them (as given, or trimmed), when putting
        them between the markup gives exactly the rendered text; else None."""
        seen = sorted(int(part) for part in parts[1::2])
        if seen != list(range(len(messages))):
            return None
        for contents in ([m.content for m in messages], [m.content.strip() for m in messages]):
            rebuilt = "".join(
                part if index % 2 == 0 else contents[int(part)] for index, part in enumerate(parts)
            )
            if rebuilt == text:
                return contents
        return None


def _split_markers(marked: str, prefix: str) -> list[str]:
    """`re.split(prefix + r"(\\d+)@@", marked)` for a literal `prefix`: the markup and the
    message indices, alternating (compiling a pattern with each prompt's own nonce cost
    more than the split)."""
    pieces = marked.split(prefix)
    parts = [pieces[0]]
    for piece in pieces[1:]:
        index, found, rest = piece.partition("@@")
        if found and index.isdecimal():
            parts += [index, rest]
        else:  # not a marker after all: text, as the pattern would have left it
            parts[-1] += prefix + piece
    return parts
