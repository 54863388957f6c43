"""The peer benchmark's arithmetic, kept apart from the servers so it can be tested alone:
which side goes first in a round, the prompts of the two bursts of a round, when a round
is void, and the median with its spread over the rounds that count.

A round is void when the two sides did not do the same work: a reply failed or was
refused, or any stream's completion or prompt token count differs between the sides.
A void round stays in the result with its reason and is left out of every median.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

LLAMAQL = "llamaql"
LLAMA_SERVER = "llama_server"
SIDES = (LLAMAQL, LLAMA_SERVER)

STORY_SUBJECTS = (
    "a dragon who learns to bake bread",  # STREAM_PROMPT's
    "a lighthouse keeper who befriends a whale",
    "a robot who wants to paint the sea",
    "a fox who opens a library in the forest",
    "a sailor lost on a sea of stars",
    "a girl who can talk to trees",
    "an old clock that runs backwards",
    "a cat who becomes the mayor of a village",
)
# The burst before the measured one: other chats whose prompts differ from the measured
# prompts from the first word on, so no server can answer the measured prompts from a
# cache of the ones before (FINDINGS.md, "llama-server's prompt cache").
BEFORE_OPENINGS = ("Tell", "Describe", "Imagine", "Narrate")
BEFORE_SUBJECTS = (
    "a baker who finds a map in a loaf",
    "a train that only runs at midnight",
    "a snowman who wants to see summer",
    "an owl who keeps the forest's secrets",
    "a river that changes its course every year",
    "a boy who collects lost sounds",
    "a garden that grows on a cloud",
    "a knight who is afraid of the dark",
)


def story_prompt(index: int) -> str:
    """The measured burst's prompt for chat `index` (the same on both sides)."""
    prompt = f"Write a very long story about {STORY_SUBJECTS[index % len(STORY_SUBJECTS)]}."
    return prompt if index < len(STORY_SUBJECTS) else f"{prompt} Part {index // 8 + 1}."


def before_prompt(index: int) -> str:
    """The prompt of chat `index` in the burst just before the measured one."""
    opening = BEFORE_OPENINGS[index % len(BEFORE_OPENINGS)]
    subject = BEFORE_SUBJECTS[index % len(BEFORE_SUBJECTS)]
    prompt = f"{opening} a long tale of {subject}."
    return prompt if index < len(BEFORE_SUBJECTS) else f"{prompt} Part {index // 8 + 1}."


def order(round_index: int) -> tuple[str, str]:
    """The sides in the order they run in round `round_index` (counted over the whole run,
    so drift on the machine falls on both): llama-server first in even rounds."""
    return (LLAMA_SERVER, LLAMAQL) if round_index % 2 == 0 else (LLAMAQL, LLAMA_SERVER)


def void_reason(ours: dict[str, Any], peer: dict[str, Any]) -> str | None:
    """Why one measured burst pair does not count, or None when both sides did the same
    work. Each side is a burst's figures: `refused`, `completion_tokens_each` and
    `prompt_tokens_each` (None where a server did not say)."""
    reasons = [
        f"{name}: {side['refused']} of {side['streams']} replies failed"
        for name, side in ((LLAMAQL, ours), (LLAMA_SERVER, peer))
        if side["refused"]
    ]
    for field in ("completion_tokens_each", "prompt_tokens_each"):
        a, b = ours[field], peer[field]
        if None in a or None in b:
            if field == "completion_tokens_each":
                reasons.append(f"{field}: a count is missing")
            continue  # a server that does not report prompt tokens is not held to them
        if a != b:
            reasons.append(f"{field} differ: llamaql {a}, llama-server {b}")
    return "; ".join(reasons) or None


def turns_void_reason(
    ours: list[list[dict[str, Any]]], peer: list[list[dict[str, Any]]]
) -> str | None:
    """`void_reason` for the turns figure: every turn of every conversation must have
    the same completion and prompt token counts on both sides, and none may fail."""
    reasons = []
    for name, rows in ((LLAMAQL, ours), (LLAMA_SERVER, peer)):
        failed = sum(1 for conversation in rows for row in conversation if row["failed"])
        if failed:
            reasons.append(f"{name}: {failed} turns failed")
    for field in ("completion_tokens", "prompt_tokens"):
        a = [[row[field] for row in conversation] for conversation in ours]
        b = [[row[field] for row in conversation] for conversation in peer]
        if a != b:
            reasons.append(f"{field} differ: llamaql {a}, llama-server {b}")
    return "; ".join(reasons) or None


def stat(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """Median, min and max of the values present (and how many there were)."""
    present = [v for v in values if v is not None]
    if not present:
        return {"n": 0, "median": None, "min": None, "max": None}
    return {
        "n": len(present),
        "median": round(statistics.median(present), 3),
        "min": round(min(present), 3),
        "max": round(max(present), 3),
    }


def ratio(top: float | None, bottom: float | None) -> float | None:
    return None if not top or not bottom else round(top / bottom, 3)


def pick(record: Any, path: Sequence[str]) -> Any:
    """`record[path[0]][path[1]]...`, or None where a step is missing."""
    for key in path:
        if not isinstance(record, dict) or key not in record:
            return None
        record = record[key]
    return record


def over_rounds(
    rounds: Sequence[dict[str, Any]], figures: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """Each named figure (a path into one round, for `pick`) as `stat` over the rounds
    that are not void, with how many rounds ran and how many were void."""
    counted = [r for r in rounds if r.get("void") is None]
    return {
        "rounds_run": len(rounds),
        "void_rounds": len(rounds) - len(counted),
        **{name: stat(pick(r, path) for r in counted) for name, path in figures.items()},
    }


def number(value: float) -> str:
    """A figure as printed: whole numbers from 100 up, three significant digits below."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def cell(figure: dict[str, Any] | None, unit: str = "") -> str:
    """`1.07x (1.04-1.11)` for a `stat` (no bracket when every round gave the same
    value); `n/a` when no round counted."""
    if not figure or figure.get("median") is None:
        return "n/a"
    if figure["min"] == figure["max"]:
        return f"{number(figure['median'])}{unit}"
    return f"{number(figure['median'])}{unit} ({number(figure['min'])}-{number(figure['max'])})"
