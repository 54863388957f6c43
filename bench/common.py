"""What every benchmark shares: machine facts, summary statistics and result files.

A result is one JSON document: the machine (CPU, cores, backend, model, engine settings,
load average before and after), the benchmark's parameters, its figures, and a one-line
summary. Files land in bench/results/ as `<name>-<UTC time>.json` plus `<name>.json`
(the latest), both git-ignored.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from llamaql.config import Config, ConfigError, load_config
from llamaql.persistence.replica_link import asyncpg_dsn

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS_DIR = REPO_ROOT / "bench" / "results"


@dataclass(slots=True)
class Result:
    """One benchmark's output, filled in by the benchmark and completed by the runner."""

    name: str
    params: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""
    duration_s: float = 0.0
    details: str = ""  # printed after the summary (a table); not part of the document

    def document(self) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 2),
            "machine": self.machine,
            "params": self.params,
            "figures": self.figures,
            "summary": self.summary,
        }


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (platform's answer elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def llama_facts() -> dict[str, Any]:
    """llama-cpp-python's version and whether its build can offload to a GPU."""
    try:
        import llama_cpp
    except ImportError:
        return {"llama_cpp_python": None, "gpu_offload": None}
    return {
        "llama_cpp_python": getattr(llama_cpp, "__version__", None),
        "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
    }


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs from /proc/stat; (0, 0) elsewhere."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_busy(seconds: float = 1.0) -> float | None:
    """The fraction of all CPUs busy over `seconds`: what other work takes while the
    benchmark itself is idle (the load average lags, and counts the bench's own runs)."""
    busy0, total0 = _cpu_times()
    time.sleep(seconds)
    busy1, total1 = _cpu_times()
    return round((busy1 - busy0) / (total1 - total0), 3) if total1 > total0 else None


def machine_info(settings: Config) -> dict[str, Any]:
    """Everything needed to compare two runs, taken at the start of a benchmark."""
    model = settings.engine.model_path
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "os": platform.platform(),
        "python": platform.python_version(),
        **llama_facts(),
        "model": {
            "path": str(model),
            "file": model.name,
            "bytes": model.stat().st_size if model.is_file() else None,
        },
        "settings": {
            "n_threads": settings.engine.n_threads,
            "context_size": settings.engine.context_size,
            "n_batch": settings.engine.n_batch,
            "n_gpu_layers": settings.engine.n_gpu_layers,
            "use_extra_bufts": settings.engine.use_extra_bufts,
            "decode_lanes": settings.engine.decode_lanes,
            "queue_size": settings.engine.queue_size,
        },
        "git_commit": _git_commit(),
        "loadavg_start": list(os.getloadavg()),
        "cpu_busy_before": cpu_busy(),
    }


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def spread(values: Sequence[float]) -> dict[str, float | int | None]:
    """Median and spread of a sample: min, max, p95 and the population stdev."""
    if not values:
        return {"n": 0, "median": None, "min": None, "max": None, "p95": None, "stdev": None}
    return {
        "n": len(values),
        "median": _round(statistics.median(values)),
        "min": _round(min(values)),
        "max": _round(max(values)),
        "p95": _round(percentile(values, 95)),
        "stdev": _round(statistics.pstdev(values)),
    }


def p50_p95(values: Sequence[float]) -> dict[str, float | int | None]:
    return {
        "n": len(values),
        "p50": _round(percentile(values, 50)),
        "p95": _round(percentile(values, 95)),
        "max": _round(max(values)) if values else None,
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def ms(seconds: float) -> float:
    return seconds * 1000.0


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def utc_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_result(result: Result, results_dir: Path) -> Path:
    """Write the document as `<name>-<stamp>.json` and as the latest `<name>.json`."""
    results_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result.document(), indent=2, sort_keys=False) + "\n"
    dated = results_dir / f"{result.name}-{utc_stamp()}.json"
    dated.write_text(text)
    (results_dir / f"{result.name}.json").write_text(text)
    return dated


def finish(result: Result, started: float) -> None:
    """Stamp duration and the end load average (high values mean a noisy machine)."""
    result.duration_s = time.monotonic() - started
    result.machine["loadavg_end"] = list(os.getloadavg())


def start_cli(prog: str, model_hint: str = "") -> Config | int:
    """What both suites' `main` does before running: log INFO lines to stderr (httpx's
    per-request lines quietened), load the server's settings and check the model file is
    there, so a bad environment ends in one line and an exit status (2: settings, 3: no
    model) instead of a traceback minutes into a run. Returns the settings or that status."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = load_config()
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    if not settings.engine.model_path.is_file():
        print(
            f"{prog}: model file not found: {settings.engine.model_path}{model_hint}",
            file=sys.stderr,
        )
        return 3
    return settings


@asynccontextmanager
async def scratch_postgres(url: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for this run (dropped after)."""
    name = f"llamaql_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield url.rsplit("/", 1)[0] + "/" + name
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
