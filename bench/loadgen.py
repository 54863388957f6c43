"""The load generator of the API-overhead benchmark, run as its own process so that the
client's CPU time is not charged to the server's event loop.

`python -m bench.loadgen --url URL --user UUID --requests N --duration S --concurrency C`
posts one GraphQL query over keep-alive HTTP connections from C workers until N requests
or S seconds, whichever comes first, and prints one JSON document: counts, errors,
elapsed seconds, requests per second and latency percentiles (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httpx

from bench.common import p50_p95, percentile

CONVERSATIONS_PAGE = """
query Page($first: Int!) {
  conversations(first: $first) {
    totalCount
    edges { cursor node { id title updatedAt } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
WARMUP_REQUESTS = 20


async def _one(client: httpx.AsyncClient, url: str, body: dict[str, Any], page: int) -> bool:
    response = await client.post(url, json=body)
    if response.status_code != 200:
        return False
    data = response.json()
    return not data.get("errors") and len(data["data"]["conversations"]["edges"]) == page


async def run_load(
    url: str, user: str, *, requests: int, duration_s: float, concurrency: int, page: int
) -> dict[str, Any]:
    body = {"query": CONVERSATIONS_PAGE, "variables": {"first": page}}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors = 0
    issued = 0
    async with httpx.AsyncClient(
        headers={"X-User-ID": user}, limits=limits, timeout=30.0
    ) as client:
        for _ in range(WARMUP_REQUESTS):
            await _one(client, url, body, page)
        started = time.perf_counter()
        deadline = started + duration_s

        async def worker() -> None:
            nonlocal issued, errors
            while issued < requests and time.perf_counter() < deadline:
                issued += 1
                begin = time.perf_counter()
                try:
                    ok = await _one(client, url, body, page)
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - begin) * 1000.0)
                errors += 0 if ok else 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "errors": errors,
        "elapsed_s": round(elapsed, 3),
        "requests_per_s": round(len(latencies) / elapsed, 1) if elapsed > 0 else None,
        "latency_ms": {**p50_p95(latencies), "p99": _r(percentile(latencies, 99))},
        "stopped_by": "count" if len(latencies) >= requests else "time",
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds, at most")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--page", type=int, default=20, help="conversations(first: N)")
    args = parser.parse_args(argv)
    if not args.url.startswith(("http://127.0.0.1:", "http://localhost:")):
        parser.error(f"--url {args.url!r}: the load generator only targets loopback")
    result = asyncio.run(
        run_load(
            args.url,
            args.user,
            requests=args.requests,
            duration_s=args.duration,
            concurrency=args.concurrency,
            page=args.page,
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
