"""`python -m bench [NAME ...]`: run the benchmarks (all by default), print each one's JSON
document and a one-line summary, and write the JSON under bench/results/.

Defaults finish in about 15 minutes on an idle 2-core machine, two thirds of it the peer
benchmark (5 rounds per level and of the turns); the flags make runs larger or smaller (or,
with --smoke, as small as possible: what the test suite runs so the benchmarks cannot rot).
Engine settings (threads, context, batch, ...) come from the same LLAMAQL_* environment
and .env as the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from bench import api, concurrency, live, models, peer, restart, shape, stream, titles, turns
from bench.common import (
    DEFAULT_RESULTS_DIR,
    Result,
    finish,
    machine_info,
    start_cli,
    utc_iso,
    write_result,
)
from bench.llama_server import LlamaServerMissing
from llamaql.config import Config

logger = logging.getLogger("bench")
# peer last: it reads the stream result of the same run
NAMES = (
    "stream",
    "concurrency",
    "titles",
    "turns",
    "restart",
    "api",
    "shape",
    "models",
    "live",
    "peer",
)
BUSY_WARNING = 0.15  # CPU share other work takes while the bench is idle


def _levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,2,4,8, got {text!r}") from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return levels


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run: {', '.join(NAMES)} (default: all)",
    )
    parser.add_argument("--smoke", action="store_true", help="smallest sizes (for tests)")
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the server during the stream benchmark (needs py-spy)",
    )
    group = parser.add_argument_group("stream vs raw")
    group.add_argument("--rounds", type=int, help="measured rounds (default 5)")
    group.add_argument("--max-tokens", type=int, help="tokens per answer (default 256)")
    group.add_argument(
        "--raw-whole-prompt-cached",
        action="store_true",
        help="let the raw side reuse its whole cached prompt (the server, on a new "
        "conversation, reuses only the system prompt's start)",
    )
    group = parser.add_argument_group("concurrency")
    group.add_argument("--levels", type=_levels, help="streams at once (default 1,2,4,8)")
    group.add_argument("--concurrency-max-tokens", type=int, help="default 96")
    group = parser.add_argument_group("titles (a burst of new chats right after another)")
    group.add_argument("--titles-rounds", type=int, help="rounds per level and side (default 3)")
    group = parser.add_argument_group("turns")
    group.add_argument("--turns", type=int, help="turns per conversation (default 10)")
    group.add_argument("--turn-max-tokens", type=int, help="default 48")
    group = parser.add_argument_group("restart")
    group.add_argument("--restart-turns", type=int, help="turns before the restart (default 6)")
    group.add_argument("--restart-rounds", type=int, help="conversations per case (default 3)")
    group = parser.add_argument_group("api overhead")
    group.add_argument("--api-conversations", type=int, help="rows seeded (default 1000)")
    group.add_argument("--api-requests", type=int, help="request cap per run (default 1500)")
    group.add_argument("--api-duration", type=float, help="seconds cap per run (default 6)")
    group.add_argument("--api-rounds", type=int, help="rounds per read and side (default 3)")
    group.add_argument("--api-concurrency", type=int, help="client workers (default 8)")
    group = parser.add_argument_group("models (two models against one, loading on demand)")
    group.add_argument("--models-replies", type=int, help="replies per model (default 2)")
    group.add_argument("--models-rounds", type=int, help="rounds, sides alternating (default 3)")
    group.add_argument("--models-max-tokens", type=int, help="tokens per reply (default 128)")
    group = parser.add_argument_group("live (replyStream watchers' delay behind the sender)")
    group.add_argument("--live-replies", type=int, help="replies measured (default 5)")
    group.add_argument(
        "--postgres",
        help="a PostgreSQL URL (postgresql+asyncpg://...) for the other-replica figure "
        "(default: LLAMAQL_TEST_POSTGRES_URL; without either it is skipped)",
    )
    group = parser.add_argument_group("peer (llamaql vs llama-server; needs `make llama-server`)")
    group.add_argument(
        "--peer-levels", type=_levels, help="chats at once, and -np / LLAMAQL_PARALLEL (1,2,4,8)"
    )
    group.add_argument("--peer-max-tokens", type=int, help="tokens per reply (default 96)")
    group.add_argument(
        "--peer-rounds",
        type=int,
        help="rounds per level and of the turns, alternating which side goes first; "
        "medians and spread reported (default 5)",
    )
    group.add_argument("--peer-turns", type=int, help="turns per conversation (default 10)")
    return parser


P = TypeVar("P")


def _params(base: P, args: argparse.Namespace, **flags: str) -> P:
    """`base` with each field named in `flags` (field=flag) replaced by a given flag."""
    given = {name: getattr(args, flag) for name, flag in flags.items()}
    changes = {name: value for name, value in given.items() if value is not None}
    return replace(base, **changes)  # type: ignore[type-var]


Runner = Callable[[Config], Awaitable[Result]]


def _runners(args: argparse.Namespace) -> dict[str, Runner]:
    smoke = args.smoke
    stream_params = _params(
        stream.SMOKE if smoke else stream.StreamParams(),
        args,
        rounds="rounds",
        max_tokens="max_tokens",
    )
    if args.profile:
        stream_params = replace(stream_params, profile_dir=args.results_dir)
    if args.raw_whole_prompt_cached:
        stream_params = replace(stream_params, raw_reuses_whole_prompt=True)
    conc_params = _params(
        concurrency.SMOKE if smoke else concurrency.ConcurrencyParams(),
        args,
        levels="levels",
        max_tokens="concurrency_max_tokens",
    )
    turn_params = _params(
        turns.SMOKE if smoke else turns.TurnsParams(),
        args,
        turns="turns",
        max_tokens="turn_max_tokens",
    )
    restart_params = _params(
        restart.SMOKE if smoke else restart.RestartParams(),
        args,
        turns="restart_turns",
        rounds="restart_rounds",
    )
    api_params = _params(
        api.SMOKE if smoke else api.ApiParams(),
        args,
        conversations="api_conversations",
        requests="api_requests",
        duration_s="api_duration",
        concurrency="api_concurrency",
        rounds="api_rounds",
    )
    peer_params = replace(
        _params(
            peer.SMOKE if smoke else peer.PeerParams(),
            args,
            levels="peer_levels",
            max_tokens="peer_max_tokens",
            rounds="peer_rounds",
            turns="peer_turns",
        ),
        results_dir=args.results_dir,
    )
    shape_params = shape.SMOKE if smoke else shape.ShapeParams()
    titles_params = _params(
        titles.SMOKE if smoke else titles.TitlesParams(), args, rounds="titles_rounds"
    )
    models_params = _params(
        models.SMOKE if smoke else models.ModelsParams(),
        args,
        replies="models_replies",
        rounds="models_rounds",
        max_tokens="models_max_tokens",
    )
    live_params = _params(
        live.SMOKE if smoke else live.LiveParams(),
        args,
        replies="live_replies",
        postgres_url="postgres",
    )
    return {
        "live": lambda settings: live.run(settings, live_params),
        "models": lambda settings: models.run(settings, models_params),
        "stream": lambda settings: stream.run(settings, stream_params),
        "concurrency": lambda settings: concurrency.run(settings, conc_params),
        "titles": lambda settings: titles.run(settings, titles_params),
        "turns": lambda settings: turns.run(settings, turn_params),
        "restart": lambda settings: restart.run(settings, restart_params),
        "api": lambda settings: api.run(settings, api_params),
        "shape": lambda settings: shape.run(settings, shape_params),
        "peer": lambda settings: peer.run(settings, peer_params),
    }


async def _run_one(name: str, runner: Runner, settings: Config, results_dir: Path) -> bool:
    started = time.monotonic()
    machine = machine_info(settings)
    busy = machine["cpu_busy_before"]
    if busy is not None and busy > BUSY_WARNING:
        logger.warning("CPUs %.0f%% busy before %s: its numbers will be noisy", 100 * busy, name)
    stamp = utc_iso()
    logger.info("running %s ...", name)
    try:
        result = await runner(settings)
    except LlamaServerMissing as exc:  # a set-up step, not a failure worth a traceback
        logger.error("benchmark %s: %s", name, exc)
        return False
    except Exception:
        logger.exception("benchmark %s failed", name)
        return False
    result.machine = machine
    result.started_at = stamp
    finish(result, started)
    path = write_result(result, results_dir)
    print(json.dumps(result.document(), indent=2))
    print(result.summary, flush=True)
    if result.details:
        print(result.details, flush=True)
    logger.info("%s: wrote %s", name, path)
    return True


async def _main(args: argparse.Namespace, settings: Config) -> int:
    runners = _runners(args)
    names = args.names or list(NAMES)
    outcomes = [await _run_one(name, runners[name], settings, args.results_dir) for name in names]
    return 0 if all(outcomes) else 1


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in NAMES]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}: choose from {', '.join(NAMES)}")
    settings = start_cli("bench", " (run `make model`)")
    if isinstance(settings, int):
        return settings
    return asyncio.run(_main(args, settings))


if __name__ == "__main__":
    raise SystemExit(main())
