"""The `viewer` type: who the server takes the caller to be."""

from __future__ import annotations

import uuid

import strawberry


@strawberry.type(
    description=(
        "The user a request is served as: what the deployment trusts (the proxy's "
        "X-User-ID, or the bearer token's subject), never what a page remembers"
    )
)
class Viewer:
    id: strawberry.ID

    @classmethod
    def for_user(cls, user_id: uuid.UUID) -> Viewer:
        return cls(id=strawberry.ID(str(user_id)))
