"""`python -m bench.reliability [NAME ...] [--size small|medium|full]`: run the figures
(all by default), print each one's JSON document, then the table; write
reliability.json under the results folder. Exit status 1 when a figure misses a bound
or could not be measured."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.common import DEFAULT_RESULTS_DIR, machine_info, start_cli, utc_iso
from bench.reliability import (
    cost,
    db_outage,
    fuzz,
    headers,
    hog,
    kill,
    load,
    memory,
    slow_reader,
)
from bench.reliability.common import SIZES, Figure, FigureSkipped, Size
from llamaql.config import Config

logger = logging.getLogger("bench.reliability")
Runner = Callable[[Config, Size], Awaitable[Figure]]
RUNNERS: dict[str, Runner] = {
    "load": load.run,
    "kill": kill.run,
    "memory": memory.run,
    "slow_reader": slow_reader.run,
    "fuzz": fuzz.run,
    "cost": cost.run,
    "headers": headers.run,
    "hog": hog.run,
    "db_outage": db_outage.run,
}
RESULT_FILE = "reliability.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"figures: {', '.join(RUNNERS)} (default all)"
    )
    parser.add_argument("--size", choices=SIZES, default="full")
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR)
    return parser


async def _run_one(name: str, settings: Config, size: Size) -> Figure:
    logger.info("running %s (%s) ...", name, size)
    started = time.monotonic()
    try:
        figure = await RUNNERS[name](settings, size)
    except FigureSkipped as skipped:
        logger.warning("figure %s skipped: %s", name, skipped)
        figure = Figure(name, {"size": size}, skipped=str(skipped))
    except Exception as exc:
        logger.exception("figure %s could not be measured", name)
        figure = Figure(name, {"size": size}, error=f"{type(exc).__name__}: {exc}")
    figure.seconds = time.monotonic() - started
    logger.info("%s: %s in %.0f s", name, "ok" if figure.ok else "FAILED", figure.seconds)
    return figure


def table(document: dict[str, Any]) -> str:
    """The Markdown table of a reliability.json document."""
    lines = [
        f"Size {document['size']}, {document['started_at']}, commit "
        f"{document['machine'].get('git_commit')}",
        "",
        "| figure | check | value | bound | ok |",
        "|---|---|---|---|---|",
    ]
    for figure in document["figures"]:
        if figure["error"]:
            lines.append(f"| {figure['figure']} | measured | {figure['error']} | - | FAILED |")
        if figure.get("skipped"):
            lines.append(f"| {figure['figure']} | skipped | {figure['skipped']} | - | - |")
        for check in figure["checks"]:
            verdict = "yes" if check["ok"] else ("FAILED" if check["enforced"] else "no (noted)")
            lines.append(
                f"| {figure['figure']} | {check['name']} | {check['value']} | "
                f"{check['bound']} | {verdict} |"
            )
    return "\n".join(lines)


async def _main(args: argparse.Namespace, settings: Config) -> int:
    names = args.names or list(RUNNERS)
    stamp = utc_iso()
    machine = machine_info(settings)  # before the run: its commit and how busy the CPUs were
    figures = [await _run_one(name, settings, args.size) for name in names]
    document = {
        "suite": "reliability",
        "size": args.size,
        "started_at": stamp,
        "machine": machine,
        "ok": all(f.ok for f in figures),
        "figures": [f.document() for f in figures],
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / RESULT_FILE).write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2))
    print(table(document), flush=True)
    return 0 if document["ok"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in RUNNERS]
    if unknown:
        parser.error(f"unknown figure {unknown[0]!r}: choose from {', '.join(RUNNERS)}")
    settings = start_cli("reliability")
    if isinstance(settings, int):
        return settings
    return asyncio.run(_main(args, settings))


if __name__ == "__main__":
    raise SystemExit(main())
