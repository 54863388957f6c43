"""Settings of adding and removing models: who may do it over the API, and the largest
file a pull may write."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import NoDecode

from llamaql.config.base import EnvConfig

DEFAULT_MODEL_MAX_BYTES = 64 * 1024**3


class PullConfig(EnvConfig):
    """`LLAMAQL_MODEL_ADMINS` and `LLAMAQL_MODEL_MAX_BYTES`."""

    model_admins: Annotated[tuple[uuid.UUID, ...], NoDecode] = Field(
        (),
        validation_alias=AliasChoices("LLAMAQL_MODEL_ADMINS"),
        description="Comma-separated user ids that may pullModel and deleteModel over the "
        "API; default: nobody (`llamaql pull` on the server's machine is not limited)",
    )
    model_max_bytes: int = Field(
        DEFAULT_MODEL_MAX_BYTES,
        ge=1,
        validation_alias=AliasChoices("LLAMAQL_MODEL_MAX_BYTES"),
        description="Largest model file a pull may download; a larger one fails and "
        "leaves nothing behind",
    )

    @field_validator("model_admins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value
