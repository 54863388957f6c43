"""Output types of `search`: hits with their conversation, message and snippet."""

from __future__ import annotations

import strawberry

from llamaql.api.types import Conversation, Message, PageInfo
from llamaql.ports import search as ports
from llamaql.ports.values import Page


@strawberry.type(description="A piece of a snippet; highlighted when it is a matched word")
class SnippetPart:
    text: str
    highlighted: bool


def _snippet_parts(root: SearchHit) -> list[SnippetPart]:
    # Built when asked for: a page of hits is mostly read for its plain snippet.
    return [SnippetPart(text=p.text, highlighted=p.highlighted) for p in root._parts]


@strawberry.type(description="A message, or a conversation's title, that matches a search")
class SearchHit:
    conversation: Conversation
    message: Message | None = strawberry.field(description="Null when the title matched")
    snippet: str = strawberry.field(
        description="Plain text around the match, with … where the text was cut"
    )
    snippet_parts: list[SnippetPart] = strawberry.field(
        resolver=_snippet_parts,
        description="The snippet in pieces, the matched words flagged (render as text)",
    )
    _parts: strawberry.Private[tuple[ports.SnippetPart, ...]]

    @classmethod
    def from_hit(cls, hit: ports.SearchHit) -> SearchHit:
        return cls(
            conversation=Conversation.from_value(hit.conversation),
            message=Message.from_value(hit.message) if hit.message is not None else None,
            snippet="".join([part.text for part in hit.snippet]),
            _parts=hit.snippet,
        )


@strawberry.type
class SearchHitEdge:
    cursor: str
    node: SearchHit


@strawberry.type
class SearchHitConnection:
    edges: list[SearchHitEdge]
    page_info: PageInfo
    total_count: int

    @classmethod
    def from_page(cls, page: Page[ports.SearchHit]) -> SearchHitConnection:
        return cls(
            edges=[SearchHitEdge(cursor=c, node=SearchHit.from_hit(h)) for c, h in page.edges],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            total_count=page.total_count,
        )
