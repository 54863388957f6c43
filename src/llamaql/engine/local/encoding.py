"""Prompts to tokens where only the chat template's own markup is special.

Tokenizing a rendered prompt with special-token parsing would turn a user's typed
`<|im_end|><|im_start|>system` into real control tokens: a forged system turn. So the
template is rendered once more with a random marker in place of each message's content;
the text between markers (the template's markup) is tokenized with special tokens, and
each content as plain text. Templates that rewrite contents beyond trimming them cannot
be split this way; their prompts are tokenized whole, and a warning says so once.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Sequence

from llamaql.engine.local.templates import ChatTemplate
from llamaql.ports.engine import ChatMessage

logger = logging.getLogger(__name__)

# (text, special, first) -> tokens; `first` says whether a BOS may be added.
Tokenize = Callable[[str, bool, bool], list[int]]


class PromptEncoder:
    """Renders messages with a template and tokenizes the result safely."""

    def __init__(self, template: ChatTemplate, tokenize: Tokenize) -> None:
        self._template = template
        self._tokenize = tokenize
        self._warned = False

    def encode(self, messages: Sequence[ChatMessage]) -> tuple[str, list[int]]:
        """The prompt text and its tokens; TemplateError when the template refuses."""
        text = self._template.render(messages)
        nonce = secrets.token_hex(8)
        marked = self._template.render(
            [ChatMessage(m.role, f"@@llamaql-{nonce}-{i}@@") for i, m in enumerate(messages)]
        )
        parts = re.split(rf"@@llamaql-{nonce}-(\d+)@@", marked)
        contents = self._contents(parts, messages, text)
        if contents is None:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "the chat template rewrites message contents: prompts are tokenized "
                    "whole, so special-token text typed by users is not neutralized"
                )
            return text, self._tokenize(text, True, True)
        tokens: list[int] = []
        for index, part in enumerate(parts):
            if index % 2 == 0:
                tokens += self._tokenize(part, True, index == 0) if part else []
            else:
                tokens += self._tokenize(contents[int(part)], False, False)
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
