"""The types of pullProgress: a model pull's state, bytes, rate and failure."""

from __future__ import annotations

from enum import Enum

import strawberry

from llamaql.api.enums import ErrorCode
from llamaql.ports import model_files


@strawberry.enum(description="Where a model pull stands")
class PullState(Enum):
    DOWNLOADING = "DOWNLOADING"
    VERIFYING = "VERIFYING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"


@strawberry.type(description="Why a pull failed")
class PullError:
    code: ErrorCode
    message: str
    retryable: bool


@strawberry.type(
    description=(
        "A model pull as it stands. Byte counts are Floats: a model may pass GraphQL's "
        "32-bit Int (they are exact up to 2^53)"
    )
)
class PullProgress:
    id: strawberry.ID
    name: str = strawberry.field(description="The model's name once installed")
    url: str = strawberry.field(description="What is downloaded (hf:// resolved)")
    state: PullState
    bytes_done: float
    total_bytes: float | None = strawberry.field(description="null while the server has not said")
    bytes_per_second: float = strawberry.field(description="Over the last few seconds")
    error: PullError | None = strawberry.field(description="Why it FAILED; null otherwise")

    @classmethod
    def from_value(cls, progress: model_files.PullProgress) -> PullProgress:
        failure = progress.failure
        return cls(
            id=strawberry.ID(str(progress.pull_id)),
            name=progress.name,
            url=progress.url,
            state=PullState(progress.state.value),
            bytes_done=float(progress.bytes_done),
            total_bytes=float(progress.total_bytes) if progress.total_bytes is not None else None,
            bytes_per_second=progress.bytes_per_second,
            error=PullError(
                code=_code(failure.code), message=failure.message, retryable=failure.retryable
            )
            if failure is not None
            else None,
        )


def _code(code: str) -> ErrorCode:
    try:
        return ErrorCode(code)
    except ValueError:
        return ErrorCode.INTERNAL
