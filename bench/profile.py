"""Profiling the server while it streams: py-spy attached to the `llamaql serve` process
(collapsed stacks, summarised per thread), and per-thread CPU seconds from /proc.

py-spy samples Python stacks only: time inside llama.cpp shows up under the Python frame
that called it (`llama_decode` under the engine's `_decode`). The /proc figures count
every thread, llama.cpp's own worker threads included.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# py-spy --threads frames: "thread (<OS thread id>): <Python thread name>"
_THREAD = re.compile(r"^thread \((\w+)\)(?::\s*(.*))?$")


def py_spy_path() -> str | None:
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of each thread of a process, keyed `tid:name`
    (Python does not name its OS threads, so the names alone do not tell them apart)."""
    totals: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        totals[f"{task.name}:{name}"] = (int(fields[11]) + int(fields[12])) / _TICKS
    return totals


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Per-thread CPU seconds spent between two snapshots, busiest first."""
    names = set(before) | set(after)
    delta = {name: after.get(name, 0.0) - before.get(name, 0.0) for name in names}
    return dict(sorted(delta.items(), key=lambda item: -item[1]))


class CpuMeter:
    """Sums a process's per-thread CPU seconds over the windows it is measured in."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.totals: dict[str, float] = defaultdict(float)
        self._before: dict[str, float] = {}

    def __enter__(self) -> CpuMeter:
        self._before = thread_cpu(self.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, seconds in cpu_delta(self._before, thread_cpu(self.pid)).items():
            self.totals[name] += seconds

    def report(self, tokens: int, *, top: int = 6) -> dict[str, Any]:
        total = sum(self.totals.values())
        busiest = sorted(self.totals.items(), key=lambda item: -item[1])[:top]
        return {
            "cpu_s": round(total, 3),
            "cpu_ms_per_token": round(1000.0 * total / tokens, 3) if tokens else None,
            "threads_s": {name: round(seconds, 3) for name, seconds in busiest},
        }


class PySpy:
    """`py-spy record --format raw` on a running process until stop()."""

    def __init__(
        self,
        pid: int,
        output: Path,
        *,
        rate: int = 200,
        gil_only: bool = False,
        idle: bool = False,
        lines: bool = False,
    ) -> None:
        self.pid = pid
        self.output = output
        self.rate = rate
        self.gil_only = gil_only
        self.idle = idle
        self.lines = lines  # per line: tells a C call's work from waiting in the same function
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        exe = py_spy_path()
        if exe is None:
            raise RuntimeError("py-spy not found: install the bench extra (make bench)")
        self.output.parent.mkdir(parents=True, exist_ok=True)
        args = [exe, "record", "--pid", str(self.pid), "--format", "raw", "--output"]
        args += [str(self.output), "--rate", str(self.rate), "--threads"]
        args += ["--nonblocking"] + ([] if self.lines else ["--nolineno"])
        args += ["--gil"] if self.gil_only else []
        args += ["--idle"] if self.idle else []
        self._proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        await asyncio.sleep(1.0)  # let it attach before the measured work starts
        if self._proc.returncode is not None:
            await self._fail(self._proc)

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            async with asyncio.timeout(30):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if not self.output.is_file():
            await self._fail(proc)

    async def _fail(self, proc: asyncio.subprocess.Process) -> None:
        err = await proc.stderr.read() if proc.stderr is not None else b""
        raise RuntimeError(f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}")


# Frames every sample of a thread passes through: they say nothing about where time goes.
_STRUCTURAL = (
    "Thread.",
    "_bootstrap",
    "<module>",
    "main (llamaql/cli.py",
    "_serve (llamaql/cli.py",
    "run (uvicorn/main.py",
    "asyncio_run (",
    "Server.run (uvicorn",
)


def summarize(path: Path, *, top: int = 16) -> dict[str, Any]:
    """Per thread: samples, top functions by inclusive and by self samples (percent of
    that thread's samples)."""
    per_thread: dict[str, Counter[str]] = defaultdict(Counter)
    leaves: dict[str, Counter[str]] = defaultdict(Counter)
    samples: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        matches = [m for f in frames if (m := _THREAD.match(f))]
        thread = ":".join(filter(None, matches[0].groups())) if matches else "?"
        calls = [
            f
            for f in frames
            if not _THREAD.match(f) and not f.startswith(("process ", *_STRUCTURAL))
        ]
        count = int(count_text)
        samples[thread] += count
        for frame in set(calls):
            per_thread[thread][frame] += count
        if calls:
            leaves[thread][calls[-1]] += count
    return {
        thread: {
            "samples": total,
            "inclusive_pct": _top(per_thread[thread], total, top),
            "self_pct": _top(leaves[thread], total, top),
        }
        for thread, total in samples.most_common()
    }


def _top(counter: Counter[str], total: int, top: int) -> dict[str, float]:
    return {frame: round(100.0 * n / total, 1) for frame, n in counter.most_common(top)}
