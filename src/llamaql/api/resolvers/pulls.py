"""pullModel, pullProgress and deleteModel: context -> ModelPullService -> schema types.

Only the users in LLAMAQL_MODEL_ADMINS may call them (others: FORBIDDEN, nothing
fetched or removed)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from llamaql.api.context import Context
from llamaql.api.pulls import PullProgress
from llamaql.services.ids import parse_id
from llamaql.services.model_pulls import ModelPullService


async def pull_model(
    info: Info[Context, None],
    url: str,
    name: str | None = None,
    sha256: str | None = None,
    replace: bool = False,
) -> strawberry.ID:
    """Start downloading a model; its id is for pullProgress."""
    user_id = info.context.require_user()
    service = info.context.resolve(ModelPullService)
    pull_id = service.pull_as(user_id, url, name=name, sha256=sha256, replace=replace)
    return strawberry.ID(str(pull_id))


async def pull_progress(
    info: Info[Context, None], id: strawberry.ID
) -> AsyncGenerator[PullProgress, None]:
    """The pull's progress now, then as it changes, ending with COMPLETE or FAILED."""
    user_id = info.context.require_user()
    pull_id = parse_id(id, field="id")
    stream = info.context.resolve(ModelPullService).watch_as(user_id, pull_id)
    async for progress in stream:
        yield PullProgress.from_value(progress)


async def delete_model(info: Info[Context, None], name: str) -> str:
    """Remove the model's file from the models folder."""
    user_id = info.context.require_user()
    await info.context.resolve(ModelPullService).delete_as(user_id, name)
    return name
