"""`llamaql pull URL [--name NAME] [--sha256 HEX] [--force]`: add a model to
LLAMAQL_MODELS_DIR, with a progress bar on a terminal and plain lines otherwise.

The pull is the server's own (`ModelPullService` over the models folder's adapter), run
here without the API's admin check: whoever runs this can write the folder anyway.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from typing import TextIO

from llamaql.config import Config
from llamaql.ports.errors import DomainError
from llamaql.ports.model_files import PullProgress, PullState

EXIT_PULL_FAILED = 1
EXIT_BAD_REQUEST = 2
EXIT_INTERRUPTED = 130
BAR_WIDTH = 30
PLAIN_STEP_PERCENT = 10
PLAIN_EVERY_S = 5.0


def add_pull_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pull = commands.add_parser(
        "pull",
        help="download a GGUF model into LLAMAQL_MODELS_DIR",
        description="Download a GGUF model into LLAMAQL_MODELS_DIR as <name>.gguf: it is "
        "written to a temporary file (resumed with HTTP Range after an interruption) and "
        "renamed into place once its checksum and GGUF header check pass.",
    )
    pull.add_argument("url", help="http(s):// URL, or hf://owner/repo/file.gguf")
    pull.add_argument("--name", help="model name (default: the file's name without .gguf)")
    pull.add_argument("--sha256", help="expected SHA-256 of the file (64 hex digits)")
    pull.add_argument("--force", action="store_true", help="replace a model of that name")


def run_pull(args: argparse.Namespace, config: Config) -> int:
    try:
        return asyncio.run(_pull(args, config))
    except KeyboardInterrupt:
        print("\nllamaql: pull interrupted; nothing was kept", file=sys.stderr)
        return EXIT_INTERRUPTED


async def _pull(args: argparse.Namespace, config: Config) -> int:
    from llamaql.container import create_pull_service  # the server's parts, only for a pull

    service = create_pull_service(config)
    try:
        pull_id = service.start(args.url, name=args.name, sha256=args.sha256, replace=args.force)
    except DomainError as exc:
        print(f"llamaql: {exc.message}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    print(f"pulling {args.url} into {config.engine.models_dir}", flush=True)
    view = ProgressView(sys.stdout, tty=sys.stdout.isatty())
    last: PullProgress | None = None
    try:
        async for progress in service.watch(pull_id):
            view.show(progress)
            last = progress
    finally:
        await service.aclose()  # on Ctrl-C: stop the download and remove its file
    if last is not None and last.state == PullState.COMPLETE:
        path = config.engine.models_dir / f"{last.name}.gguf"
        print(f"pulled {last.name} ({human_bytes(last.bytes_done)}) into {path}")
        return 0
    failure = last.failure if last is not None else None
    reason = f"{failure.message} ({failure.code})" if failure else "unknown failure"
    print(f"llamaql: pull failed: {reason}", file=sys.stderr)
    return EXIT_PULL_FAILED


class ProgressView:
    """A pull's progress: a bar redrawn in place on a terminal (bytes, rate, ETA), plain
    lines otherwise (at each PLAIN_STEP_PERCENT, or every PLAIN_EVERY_S when the size
    is unknown, and at each change of state)."""

    def __init__(
        self, out: TextIO, *, tty: bool, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.out = out
        self.tty = tty
        self._clock = clock
        self._state: PullState | None = None
        self._step = 0  # the first plain line is at PLAIN_STEP_PERCENT, then each step
        self._last_line = clock()

    def show(self, progress: PullProgress) -> None:
        if self.tty:
            end = "\n" if progress.finished else ""
            self.out.write(f"\r{bar_line(progress)}\x1b[K{end}")
            self.out.flush()
            return
        now = self._clock()
        step = _percent(progress) // PLAIN_STEP_PERCENT if progress.total_bytes else -1
        due = step > self._step or (step < 0 and now - self._last_line >= PLAIN_EVERY_S)
        changed = self._state is not None and progress.state != self._state
        self._state = progress.state
        if due or changed:
            self.out.write(plain_line(progress) + "\n")
            self.out.flush()
            self._step, self._last_line = max(step, self._step), now


def bar_line(progress: PullProgress) -> str:
    """`name [#####.....]  45%  44.1 MiB / 98.0 MiB  12.3 MiB/s  ETA 0:04`."""
    done, total = progress.bytes_done, progress.total_bytes
    rate = f"{human_bytes(progress.bytes_per_second)}/s"
    if not total:
        return f"{progress.name}  {human_bytes(done)}  {rate}  {_state_word(progress)}"
    filled = BAR_WIDTH * min(done, total) // total
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    return (
        f"{progress.name} [{bar}] {_percent(progress):3d}%  {human_bytes(done)} / "
        f"{human_bytes(total)}  {rate}  {_state_word(progress)}"
    )


def plain_line(progress: PullProgress) -> str:
    """`pull name: 44.1 MiB of 98.0 MiB (45%), 12.3 MiB/s, ETA 0:04`."""
    done, total = progress.bytes_done, progress.total_bytes
    size = (
        f"{human_bytes(done)} of {human_bytes(total)} ({_percent(progress)}%)"
        if total
        else (human_bytes(done))
    )
    rate = human_bytes(progress.bytes_per_second)
    return f"pull {progress.name}: {size}, {rate}/s, {_state_word(progress)}"


def _state_word(progress: PullProgress) -> str:
    if progress.state == PullState.DOWNLOADING:
        return f"ETA {_eta(progress)}"
    return progress.state.value.lower()


def _percent(progress: PullProgress) -> int:
    total = progress.total_bytes
    return min(100, 100 * progress.bytes_done // total) if total else 0


def _eta(progress: PullProgress) -> str:
    total, rate = progress.total_bytes, progress.bytes_per_second
    if not total or rate <= 0:
        return "--:--"
    return clock_time((total - progress.bytes_done) / rate)


def clock_time(seconds: float) -> str:
    """`0:04`, `12:30`, `1:02:03`."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def human_bytes(count: float) -> str:
    """`512 B`, `44.1 MiB`, `3.2 GiB`."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover
