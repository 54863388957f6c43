"""Turning generated token bytes into text pieces: valid UTF-8, stop strings held back."""

from __future__ import annotations

import codecs
from collections.abc import Sequence


class ReplyText:
    """Accumulates a reply token by token.

    Bytes go through an incremental UTF-8 decoder, so a character split across tokens
    (emoji, CJK) is only released once complete. Text that could be the start of a stop
    string is held back until it either completes the stop string (then it and everything
    after it are dropped) or stops matching (then it is released).
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held = ""
        self._parts: list[str] = []
        self.stopped = False

    @property
    def text(self) -> str:
        """Everything released so far."""
        return "".join(self._parts)

    def push(self, data: bytes) -> str:
        """Add a token's bytes; return the text that may be shown now (maybe empty)."""
        if self.stopped:
            return ""
        return self._release(self._decoder.decode(data))

    def finish(self) -> str:
        """The reply ended without a stop string: release whatever is still held."""
        if self.stopped:
            return ""
        # Bytes of a character cut off by max_tokens or cancellation are dropped, not
        # shown as U+FFFD: they never became text.
        tail, self._held = self._held, ""
        self._parts.append(tail)
        return tail

    def _release(self, new_text: str) -> str:
        pending = self._held + new_text
        cut = self._first_stop(pending)
        if cut is not None:
            self.stopped = True
            self._held = ""
            out = pending[:cut]
        else:
            keep = self._partial_stop_length(pending)
            out = pending[: len(pending) - keep]
            self._held = pending[len(pending) - keep :]
        self._parts.append(out)
        return out

    def _first_stop(self, text: str) -> int | None:
        found = [i for i in (text.find(stop) for stop in self._stops) if i >= 0]
        return min(found) if found else None

    def _partial_stop_length(self, text: str) -> int:
        """Length of the longest suffix of text that begins some stop string."""
        longest = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest
