"""Input types of the contract. UNSET (absent) and null differ in updates."""

from __future__ import annotations

from typing import Any

import strawberry

from llamaql.ports.values import (
    MAX_STOP_CHARS,
    MAX_STOP_STRINGS,
    MAX_TOKENS_MIN,
    MIN_P_MAX,
    MIN_P_MIN,
    OPTION_KEYS,
    REPEAT_PENALTY_ABOVE,
    REPEAT_PENALTY_MAX,
    REPEAT_PENALTY_OFF,
    SEED_BITS,
    SEED_RANDOM,
    TEMPERATURE_MAX,
    TEMPERATURE_MIN,
    TOP_K_MAX,
    TOP_K_MIN,
    TOP_K_OFF,
    TOP_P_MAX,
    TOP_P_MIN,
)


def _between(low: float, high: float) -> str:
    return f"{low:g} to {high:g}"


@strawberry.input(description="Sampling settings; omitted or null means the default")
class GenerationOptionsInput:
    temperature: float | None = strawberry.field(
        default=None, description=_between(TEMPERATURE_MIN, TEMPERATURE_MAX)
    )
    top_p: float | None = strawberry.field(default=None, description=_between(TOP_P_MIN, TOP_P_MAX))
    top_k: int | None = strawberry.field(
        default=None, description=f"{_between(TOP_K_MIN, TOP_K_MAX)}, {TOP_K_OFF} = off"
    )
    min_p: float | None = strawberry.field(default=None, description=_between(MIN_P_MIN, MIN_P_MAX))
    repeat_penalty: float | None = strawberry.field(
        default=None,
        description=f"above {REPEAT_PENALTY_ABOVE:g}, at most {REPEAT_PENALTY_MAX:g}; "
        f"{REPEAT_PENALTY_OFF:g} = off",
    )
    seed: int | None = strawberry.field(
        default=None, description=f"{SEED_RANDOM} (random) or 0 to 2^{SEED_BITS}-1"
    )
    max_tokens: int | None = strawberry.field(
        default=None, description=f"{MAX_TOKENS_MIN} to the context size"
    )
    stop: list[str] | None = strawberry.field(
        default=None,
        description=f"Up to {MAX_STOP_STRINGS} strings of 1 to {MAX_STOP_CHARS} characters",
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
    model: str | None = strawberry.field(
        default=None,
        description="The model that answers (a name the models query lists); null: the "
        "server's default at each send",
    )


@strawberry.input(description="Only the fields given change; null clears, options replace")
class UpdateConversationInput:
    title: str | None = strawberry.UNSET
    system_prompt: str | None = strawberry.UNSET
    options: GenerationOptionsInput | None = strawberry.UNSET
    model: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="Another model for the next sends (the whole branch is prompted with "
        "its template); null: the server's default",
    )

    def changes(self) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if self.title is not strawberry.UNSET:
            changes["title"] = self.title
        if self.system_prompt is not strawberry.UNSET:
            changes["system_prompt"] = self.system_prompt
        if self.options is not strawberry.UNSET:
            changes["options"] = self.options.to_dict() if self.options else None
        if self.model is not strawberry.UNSET:
            changes["model"] = self.model
        return changes
