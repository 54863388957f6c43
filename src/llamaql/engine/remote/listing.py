"""A `/v1/models` answer read: the models an OpenAI-compatible server lists, with what
each server says of them (see models.py for which server says what)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RemoteModel:
    """One model the upstream lists: its id; its context per request where the server
    says it (vLLM's `max_model_len`); whether it is loaded (llama-server's router status;
    True where the server does not say: such servers answer with any model they list)."""

    name: str
    context_size: int | None = None
    loaded: bool = True
    loading: bool = False


def listed_models(body: Any) -> tuple[RemoteModel, ...]:
    """The models of a `/v1/models` answer, in the server's order, each name once."""
    data = body.get("data") if isinstance(body, dict) else None
    models: dict[str, RemoteModel] = {}
    for entry in data if isinstance(data, list) else []:
        name = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name or name in models:
            continue
        state = _status(entry.get("status"))
        context = entry.get("max_model_len")
        models[name] = RemoteModel(
            name=name,
            context_size=context if isinstance(context, int) and context > 0 else None,
            loaded=state in (None, "loaded"),
            loading=state == "loading",
        )
    return tuple(models.values())


def _status(value: object) -> str | None:
    """llama-server's router gives `{"value": "loaded"}`; a bare string is read too."""
    if isinstance(value, dict):
        value = value.get("value")
    return value if isinstance(value, str) else None
