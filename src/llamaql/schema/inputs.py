"""Input types of the contract. UNSET (absent) and null differ in updates."""

from __future__ import annotations

from typing import Any

import strawberry

from llamaql.services.options import OPTION_KEYS


@strawberry.input(description="Sampling settings; omitted or null means the default")
class GenerationOptionsInput:
    temperature: float | None = strawberry.field(default=None, description="0 to 2")
    top_p: float | None = strawberry.field(default=None, description="0 to 1")
    top_k: int | None = strawberry.field(default=None, description="0 to 1000, 0 = off")
    min_p: float | None = strawberry.field(default=None, description="0 to 1")
    repeat_penalty: float | None = strawberry.field(
        default=None, description="above 0, at most 2; 1 = off"
    )
    seed: int | None = strawberry.field(default=None, description="-1 (random) or 0 to 2^32-1")
    max_tokens: int | None = strawberry.field(default=None, description="1 to the context size")
    stop: list[str] | None = strawberry.field(
        default=None, description="Up to 4 strings of 1 to 64 characters"
    )

    def to_dict(self) -> dict[str, Any]:
        """The set options with snake_case keys (what validate_options takes)."""
        values = {key: getattr(self, key) for key in OPTION_KEYS}
        return {key: value for key, value in values.items() if value is not None}


@strawberry.input
class CreateConversationInput:
    title: str | None = None
    system_prompt: str | None = None
    options: GenerationOptionsInput | None = None


@strawberry.input(description="Only the fields given change; null clears, options replace")
class UpdateConversationInput:
    title: str | None = strawberry.UNSET
    system_prompt: str | None = strawberry.UNSET
    options: GenerationOptionsInput | None = strawberry.UNSET

    def changes(self) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if self.title is not strawberry.UNSET:
            changes["title"] = self.title
        if self.system_prompt is not strawberry.UNSET:
            changes["system_prompt"] = self.system_prompt
        if self.options is not strawberry.UNSET:
            changes["options"] = self.options.to_dict() if self.options else None
        return changes
