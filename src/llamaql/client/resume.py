"""What `llamaql chat` needs to get a reply back after its socket went away: when to try
again, and a fresh bearer token when the server closed the socket because the old one
expired.

A reply belongs to the server, not to the socket that asked for it: after a dropped
connection (network change, a proxy's idle timeout, a token's expiry) the client opens a
new one and follows the same reply with `replyStream(messageId, after: <characters
printed>)`, which sends exactly the rest.
"""

from __future__ import annotations

import asyncio
import subprocess

from llamaql.client.api import ApiError

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 8.0
MAX_TRIES = 8  # about 40 s of trying in all before giving up on the reply
TOKEN_COMMAND_TIMEOUT_S = 30.0


class Backoff:
    """Delays between reconnection tries: 0.5 s, doubling to at most 8 s, `MAX_TRIES`
    of them; `reset()` once a connection works again."""

    def __init__(
        self, *, first: float = FIRST_DELAY_S, most: float = MAX_DELAY_S, tries: int = MAX_TRIES
    ) -> None:
        self._first = first
        self._most = most
        self._tries = tries
        self.attempt = 0

    def next_delay(self) -> float | None:
        """How long to wait before the next try; None when it is time to give up."""
        if self.attempt >= self._tries:
            return None
        delay = min(self._first * 2.0**self.attempt, self._most)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


class TokenCommandError(ApiError):
    """The token command failed: the client cannot renew its identity."""

    def __init__(self, message: str) -> None:
        super().__init__("UNAUTHENTICATED", message)


class TokenSource:
    """A shell command that prints a fresh bearer token (`--token-command`, e.g. an
    identity provider's CLI): run for the first token when none was given, and again
    whenever the server refuses the one in use (an expired token)."""

    def __init__(self, command: str, *, timeout: float = TOKEN_COMMAND_TIMEOUT_S) -> None:
        self.command = command
        self._timeout = timeout

    def token(self) -> str:
        """Run the command; its output, stripped (a `Bearer ` prefix is dropped)."""
        try:
            done = subprocess.run(  # the user's own command, run by their shell by design
                self.command,
                shell=True,
                capture_output=True,
                text=True,
                timeout=self._timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise TokenCommandError(
                f"the token command took over {self._timeout:g} s: {self.command!r}"
            ) from None
        if done.returncode != 0:
            said = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise TokenCommandError(
                f"the token command failed (exit status {done.returncode}): {said}"
            )
        token = done.stdout.strip()
        if token.lower().startswith("bearer "):
            token = token[len("bearer ") :].strip()
        if not token or any(character.isspace() for character in token):
            raise TokenCommandError("the token command printed no token (one word expected)")
        return token

    async def fresh(self) -> str:
        """`token()` off the event loop (a provider's CLI may take a while)."""
        return await asyncio.to_thread(self.token)
