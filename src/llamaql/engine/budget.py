"""Fitting a conversation into the context: drop the oldest turns, keep the rest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llamaql.ports.engine import ChatMessage, ContextOverflowError

# When even the latest message alone leaves less than the requested reply room, the
# reply may be shortened, but not below this many tokens (or the request, if smaller).
MIN_REPLY_TOKENS = 16


@dataclass(frozen=True, slots=True)
class FittedPrompt:
    """The rendered prompt that fits, how many messages were dropped, and the reply room."""

    text: str
    tokens: tuple[int, ...]
    dropped_messages: int
    max_tokens: int


def _cut_points(messages: Sequence[ChatMessage]) -> tuple[int, int, list[int]]:
    """(first droppable index, latest user index, candidate starts of the kept history).

    History may only start at a user message (or be empty), so turns go as a whole and
    templates that insist on alternating roles still accept what is left.
    """
    head = 0
    while head < len(messages) and messages[head].role == "system":
        head += 1
    latest = max((i for i, m in enumerate(messages) if m.role == "user"), default=len(messages))
    latest = max(latest, head)
    starts = [i for i in range(head, latest) if messages[i].role == "user"] + [latest]
    if starts[0] != head:
        starts.insert(0, head)
    return head, latest, starts


def fit_prompt(
    messages: Sequence[ChatMessage],
    *,
    encode: Callable[[Sequence[ChatMessage]], tuple[str, list[int]]],
    context_size: int,
    reply_tokens: int,
) -> FittedPrompt:
    """Render and tokenize (`encode`), dropping the oldest turns until prompt + reply
    room fit.

    Never drops system messages or the latest user message (nor what follows it).
    Raises ContextOverflowError when the latest message cannot fit even alone.
    """
    head, _latest, starts = _cut_points(messages)
    cache: dict[int, tuple[str, list[int]]] = {}

    def attempt(start: int) -> tuple[str, list[int]]:
        if start not in cache:
            cache[start] = encode([*messages[:head], *messages[start:]])
        return cache[start]

    def fits(start: int) -> bool:
        return len(attempt(start)[1]) + reply_tokens <= context_size

    # Fewer messages never render to more tokens, so binary search the first start that fits.
    low, high = 0, len(starts) - 1
    if not fits(starts[high]):
        return _shortened(
            messages, head, starts[high], attempt(starts[high]), context_size, reply_tokens
        )
    while low < high:
        mid = (low + high) // 2
        if fits(starts[mid]):
            high = mid
        else:
            low = mid + 1
    text, tokens = attempt(starts[low])
    return FittedPrompt(text, tuple(tokens), starts[low] - head, reply_tokens)


def _shortened(
    messages: Sequence[ChatMessage],
    head: int,
    start: int,
    attempt: tuple[str, list[int]],
    context_size: int,
    reply_tokens: int,
) -> FittedPrompt:
    text, tokens = attempt
    room = context_size - len(tokens)
    least = min(reply_tokens, MIN_REPLY_TOKENS)
    if room < least:
        raise ContextOverflowError(
            f"the latest message does not fit in the context: the prompt needs {len(tokens)} "
            f"tokens and at least {least} are kept for the reply, "
            f"but the context holds {context_size}",
            prompt_tokens=len(tokens),
            reply_tokens=least,
            dropped_messages=start - head,
        )
    return FittedPrompt(text, tuple(tokens), start - head, room)
