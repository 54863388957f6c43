"""The terminal client's model commands: `/models` lists the server's models, `/model NAME`
sets the current conversation's model and the model of the conversations created next
(`/model default`: the server's default again; `/model` alone: which are in use)."""

from __future__ import annotations

from typing import Any

from llamaql.client import operations as ops
from llamaql.client.api import GraphQLHttp
from llamaql.client.console import Console

DEFAULT = "default"


def size_text(size: float) -> str:
    """A file size for people: `98.4 MB`; `?` when the server does not know it (0: a
    remote engine's model)."""
    if size <= 0:
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def model_line(model: dict[str, Any], *, current: str | None) -> str:
    """One row of /models: `*` marks the current conversation's model."""
    mark = "*" if model["name"] == current else " "
    state = "loading" if model["loading"] else "loaded" if model["loaded"] else "not loaded"
    facts = [state, size_text(model["fileSize"])]
    if model["quantization"] != "unknown":
        facts.append(model["quantization"])
    if model["default"]:
        facts.append("default")
    return f"{mark} {model['name']}  ({', '.join(facts)})"


class ModelCommands:
    """`/models` and `/model`; `for_new` is the model new conversations are created with
    (None: the server's default)."""

    def __init__(self, *, api: GraphQLHttp, console: Console) -> None:
        self._api = api
        self._console = console
        self.for_new: str | None = None

    async def show_all(self, conversation_id: str | None) -> None:
        models = (await self._api.execute(ops.MODELS))["models"]
        current = await self._answering(conversation_id, models)
        if not models:
            self._console.line("the server lists no models")
        for model in models:
            self._console.line(model_line(model, current=current))

    async def choose(self, argument: str, conversation_id: str | None) -> None:
        """`/model NAME` (or `default`); `/model` alone shows the models in use."""
        if not argument:
            await self._show(conversation_id)
            return
        model = None if argument == DEFAULT else argument
        if conversation_id is not None:
            await self._api.execute(ops.SET_MODEL, id=conversation_id, model=model)
        elif model is not None:
            await self._api.execute(ops.MODEL_NAMED, name=model)  # BAD_USER_INPUT if unknown
        self.for_new = model
        named = model or "the server's default"
        where = "this conversation and new ones" if conversation_id else "new conversations"
        self._console.line(f"[model: {named} for {where}]")

    async def _show(self, conversation_id: str | None) -> None:
        models = (await self._api.execute(ops.MODELS))["models"]
        if conversation_id is not None:
            current = await self._answering(conversation_id, models)
            self._console.line(f"[this conversation: {current or '?'}]")
        upcoming = self.for_new or f"the server's default ({_default(models) or '?'})"
        self._console.line(f"[new conversations: {upcoming}]")

    async def _answering(self, conversation_id: str | None, models: list[Any]) -> str | None:
        """The model that answers the conversation: its own, else the server's default."""
        if conversation_id is None:
            return None
        found = (await self._api.execute(ops.CONVERSATION_MODEL, id=conversation_id))[
            "conversation"
        ]
        chosen: str | None = found["model"] if found is not None else None
        return chosen or _default(models)


def _default(models: list[Any]) -> str | None:
    return next((str(model["name"]) for model in models if model["default"]), None)
