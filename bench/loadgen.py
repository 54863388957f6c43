"""The load generator of the API-overhead benchmark, run as its own process so that the
client's CPU time is not charged to the server's event loop.

`python -m bench.loadgen --url URL --user UUID --read READ --requests N --duration S
--concurrency C` posts one read (`conversations`, `messages` with --conversation ID, or
`search` with --query WORDS) over keep-alive HTTP connections from C workers until N
requests or S seconds, whichever comes first, and prints one JSON document: counts,
errors, elapsed seconds, requests per second, latency percentiles (ms) and a digest of
the first answer (so two servers can be shown to answer alike).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
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
MESSAGES_PAGE = """
query Messages($id: ID!, $first: Int!) {
  conversation(id: $id) {
    id title
    messages(first: $first) {
      totalCount
      edges { cursor node { id role text createdAt } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""
SEARCH_PAGE = """
query Search($query: String!, $first: Int!) {
  search(query: $query, first: $first) {
    totalCount
    edges { cursor node { conversation { id title } message { id text } snippet } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
READS = {
    "conversations": ("Page", CONVERSATIONS_PAGE),
    "messages": ("Messages", MESSAGES_PAGE),
    "search": ("Search", SEARCH_PAGE),
}
WARMUP_REQUESTS = 20


def read_body(read: str, page: int, conversation: str | None, query: str | None) -> dict[str, Any]:
    """The POST body of one read (its operationName tells the bare endpoint which)."""
    name, document = READS[read]
    variables: dict[str, Any] = {"first": page}
    if read == "messages":
        variables["id"] = conversation
    if read == "search":
        variables["query"] = query
    return {"query": document, "operationName": name, "variables": variables}


def _edges(data: dict[str, Any]) -> list[Any]:
    root = next(iter(data.values()))
    if root is not None and "messages" in root:
        root = root["messages"]
    return list(root["edges"]) if root else []


async def _one(client: httpx.AsyncClient, url: str, body: dict[str, Any], page: int) -> bool:
    response = await client.post(url, json=body)
    if response.status_code != 200:
        return False
    data = response.json()
    return not data.get("errors") and len(_edges(data["data"])) == page


async def _digest(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> str:
    answer = (await client.post(url, json=body)).json()
    canonical = json.dumps(answer, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


async def run_load(
    url: str,
    user: str,
    *,
    requests: int,
    duration_s: float,
    concurrency: int,
    page: int,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body = body or read_body("conversations", page, None, None)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors = 0
    issued = 0
    async with httpx.AsyncClient(
        headers={"X-User-ID": user}, limits=limits, timeout=30.0
    ) as client:
        digest = await _digest(client, url, body)
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
        "answer_digest": digest,
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
    parser.add_argument("--page", type=int, default=20, help="first: N of the read")
    parser.add_argument("--read", choices=sorted(READS), default="conversations")
    parser.add_argument("--conversation", help="the conversation id (--read messages)")
    parser.add_argument("--query", help="the search words (--read search)")
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
            body=read_body(args.read, args.page, args.conversation, args.query),
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
