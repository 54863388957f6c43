"""Text that can be stored: no NUL characters and no lone UTF-16 surrogates.

JSON lets a client send both (`"\\u0000"`, `"\\ud800"`); Python keeps them in a str,
but SQLite cannot encode a lone surrogate as UTF-8 and PostgreSQL refuses NUL in text.
Checked once for every text input at the GraphQL edge; usable by any service too.
"""

from __future__ import annotations

import re

# After JSON decoding, a valid surrogate pair is one code point: any surrogate left
# in a str is a lone one.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_character(text: str) -> str | None:
    """Why `text` cannot be stored, naming the character and its position; else None."""
    match = _UNSTORABLE.search(text)
    if match is None:
        return None
    char = match.group()
    kind = "a NUL character" if char == "\x00" else "a lone UTF-16 surrogate"
    return f"contains {kind} ({char!r}) at position {match.start()}"
