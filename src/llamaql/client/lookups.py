"""`llamaql chat`'s read-only lookups: /search and /context."""

from __future__ import annotations

from llamaql.client import operations as ops
from llamaql.client.api import GraphQLHttp
from llamaql.client.console import Console
from llamaql.client.help import SPEAKERS, UsageError


class LookupCommands:
    """Finding text, and measuring what a message would cost, without sending anything."""

    def __init__(self, *, api: GraphQLHttp, console: Console) -> None:
        self.api = api
        self.console = console

    async def search(self, words: str) -> None:
        if not words:
            raise UsageError("usage: /search words")
        connection = (await self.api.execute(ops.SEARCH, query=words))["search"]
        if not connection["edges"]:
            self.console.line("no match")
        for edge in connection["edges"]:
            hit = edge["node"]
            conversation = hit["conversation"]
            where = "title" if hit["message"] is None else SPEAKERS[hit["message"]["role"]]
            title = conversation["title"] or "(untitled)"
            self.console.line(f"[{conversation['id'][:8]}] {title} ({where}): {hit['snippet']}")

    async def context(self, conversation_id: str, text: str) -> None:
        usage = (await self.api.execute(ops.CONTEXT_USAGE, id=conversation_id, text=text or None))[
            "contextUsage"
        ]
        used = usage["promptTokens"] + usage["replyTokens"]
        line = (
            f"[context: {usage['promptTokens']} prompt + {usage['replyTokens']} reply tokens "
            f"of {usage['contextSize']} ({100 * used // max(usage['contextSize'], 1)} %)"
        )
        if usage["droppedMessages"]:
            line += f"; {usage['droppedMessages']} earlier messages left out"
        self.console.line(line + ("]" if usage["fits"] else "; does not fit]"))
