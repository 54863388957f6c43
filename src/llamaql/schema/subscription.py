"""The Subscription root (sendMessage, from the chat issue).

Define `class Subscription` here with `@strawberry.type` and its fields, and set
`SUBSCRIPTION = Subscription`; build_schema picks it up. Until then the schema has no
subscription root (Strawberry rejects an empty one).
"""

from __future__ import annotations

SUBSCRIPTION: type | None = None
