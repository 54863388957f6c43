"""Terminal output that model and user text cannot take over.

Replies, titles and error messages come from the model, other clients or the server;
printed raw, an ESC sequence in them could move the cursor, rewrite earlier lines,
change the window title or, on some terminals, answer back into the input. Everything
printed goes through `inert`, which keeps newlines and tabs and drops every other
control character (C0, DEL, the C1 range, where 0x9B is a one-byte CSI) and the
Unicode bidirectional overrides that can make text read differently than it is.
"""

from __future__ import annotations

import re
from typing import TextIO

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def inert(text: str) -> str:
    """The text without anything a terminal would act on, except newline and tab."""
    return _CONTROL.sub("", text)


class Console:
    """Where the client writes; a file-like stream (stdout, or a StringIO in tests)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._at_line_start = True

    def write(self, text: str) -> None:
        """Write text as it comes (a reply's pieces), made inert, flushed at once."""
        clean = inert(text)
        if not clean:
            return
        self._stream.write(clean)
        self._stream.flush()
        self._at_line_start = clean.endswith("\n")

    def line(self, text: str = "") -> None:
        """Write a whole line, starting a new one first if a reply left one open."""
        self.end_line()
        self.write(text + "\n")

    def input_ended(self) -> None:
        """The user pressed Enter: the terminal is at a line start whatever was written."""
        self._at_line_start = True

    def end_line(self) -> None:
        """Close a line left open by a streamed reply."""
        if not self._at_line_start:
            self.write("\n")
