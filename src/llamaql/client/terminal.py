"""The keyboard side of `llamaql chat`: the prompt, Ctrl-C and Ctrl-D.

Lines are read on a daemon thread (`input()`, so a terminal gets readline's editing and
history) one at a time, only when the prompt is due, so the prompt never lands in the
middle of a streaming reply. SIGINT goes to the event loop: while a reply streams it
cancels the reply; at the prompt the first one says how to leave and a second one
leaves, as does Ctrl-D (end of input) or /quit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import termios
import threading
from collections.abc import Iterator
from queue import SimpleQueue
from typing import Any, TextIO

from llamaql.client.api import ApiError, FreshTokens, GraphQLHttp, Identity
from llamaql.client.console import Console, inert
from llamaql.client.reply import describe_error
from llamaql.client.session import ChatSession

PROMPT = "> "
STDIN_FD = 0
EXIT_OK = 0
EXIT_UNREACHABLE = 1
_Request = tuple[asyncio.AbstractEventLoop, "asyncio.Future[str | None]"]


class LineReader:
    """Reads one line per request on its own thread; None at end of input.

    On a terminal it is `input()` with readline. Otherwise (a pipe, a file) it reads the
    file descriptor itself: `sys.stdin.readline()` would hold the stream's lock in this
    daemon thread, and the interpreter aborts at exit if it needs that lock.
    """

    def __init__(self, prompt: str, console: Console) -> None:
        self._prompt = prompt
        self._console = console
        self._requests: SimpleQueue[_Request] = SimpleQueue()
        self._pending: asyncio.Future[str | None] | None = None
        self._interactive = sys.stdin.isatty() and sys.stdout.isatty()
        self._buffer = b""
        if self._interactive:
            with contextlib.suppress(ImportError):
                import readline  # noqa: F401  (gives input() line editing and history)
        threading.Thread(target=self._serve, name="llamaql-chat-input", daemon=True).start()

    def next_line(self) -> asyncio.Future[str | None]:
        """The line being read, or a new request for one (a Ctrl-C at the prompt
        leaves the request standing: the thread is still in input())."""
        if self._pending is None or self._pending.done():
            loop = asyncio.get_running_loop()
            self._pending = loop.create_future()
            self._requests.put((loop, self._pending))
        return self._pending

    def _serve(self) -> None:
        while True:
            loop, future = self._requests.get()
            try:
                line = input(self._prompt) if self._interactive else self._read_line()
            except (EOFError, OSError, ValueError):
                line = None
            loop.call_soon_threadsafe(_resolve, future, line)

    def _read_line(self) -> str | None:
        self._console.write(self._prompt)
        while b"\n" not in self._buffer:
            chunk = os.read(STDIN_FD, 4096)
            if not chunk:
                rest, self._buffer = self._buffer, b""
                return rest.decode(errors="replace") if rest else None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(errors="replace")


def _resolve(future: asyncio.Future[str | None], line: str | None) -> None:
    if not future.done():
        future.set_result(line)


@contextlib.contextmanager
def _terminal_restored(stream: TextIO) -> Iterator[None]:
    """Put the terminal back as found: leaving while readline holds it in raw mode
    would otherwise leave the shell without echo."""
    try:
        fd = stream.fileno()
        saved = termios.tcgetattr(fd)
    except (OSError, ValueError, termios.error):  # not a terminal: nothing to restore
        yield
        return
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def repl(session: ChatSession, reader: LineReader) -> None:
    """Prompt, run, repeat, until /quit, Ctrl-D or a second Ctrl-C at the prompt."""
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()

    def on_sigint() -> None:
        if not session.interrupt():
            interrupted.set()

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        warned = False
        while True:
            line_future = reader.next_line()
            interrupt_wait = loop.create_task(interrupted.wait())
            waiters: set[asyncio.Future[Any]] = {line_future, interrupt_wait}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            interrupt_wait.cancel()
            if interrupted.is_set() and not line_future.done():
                interrupted.clear()
                if warned:
                    session.console.end_line()
                    return
                warned = True
                session.console.write(f"\n(Ctrl-C again or Ctrl-D to quit)\n{PROMPT}")
                continue
            interrupted.clear()
            warned = False
            line = line_future.result()
            session.console.input_ended()
            if line is None:
                session.console.line()
                return
            if not await session.handle(line):
                return
            # A Ctrl-C during a command that streams nothing is not one at the prompt.
            interrupted.clear()
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def chat(
    *,
    url: str,
    ws_url: str,
    identity: Identity,
    options: dict[str, object],
    tokens: FreshTokens | None = None,
) -> int:
    """`llamaql chat`: connect, greet, and run the prompt on this terminal."""
    console = Console(sys.stdout)
    async with GraphQLHttp(url, identity, tokens=tokens) as api:
        session = ChatSession(api=api, ws_url=ws_url, console=console, options=options)
        try:
            await session.greet()
        except ApiError as exc:
            print(f"llamaql chat: {inert(describe_error(exc))}", file=sys.stderr)
            return EXIT_UNREACHABLE
        with _terminal_restored(sys.stdin):
            await repl(session, LineReader(PROMPT, console))
    return EXIT_OK
