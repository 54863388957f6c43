"""The checks sendMessage makes before it writes anything, as domain errors."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from llamaql.ports.engine import (
    ChatMessage,
    ContextOverflowError,
    Engine,
    EngineError,
    EngineUnavailableError,
    InvalidOptionsError,
    ModelUnavailableError,
    PreparedPrompt,
    SamplingOptions,
)
from llamaql.ports.errors import BadInputError, DomainError

logger = logging.getLogger(__name__)


def check_text(text: str, *, max_chars: int) -> None:
    """Not blank, and no longer than the configured limit."""
    if not text.strip():
        raise BadInputError("text must not be blank")
    if len(text) > max_chars:
        raise BadInputError(f"text must be at most {max_chars} characters, got {len(text)}")


def history_limit(engine: Engine) -> int:
    """The most messages a prompt could hold: each one kept takes at least one token of
    the context, so older ones are never read (a bounded cost per send, however long the
    conversation)."""
    return engine.info().context_size


def queue_full_error() -> DomainError:
    return DomainError(
        "the server is busy with other replies; try again shortly",
        code="QUEUE_FULL",
        retryable=True,
    )


async def prepare_prompt(
    engine: Engine,
    messages: Sequence[ChatMessage],
    sampling: SamplingOptions,
    *,
    model: str | None = None,
    owner: str | None = None,
    overflow: bool = False,
) -> PreparedPrompt:
    """Render and budget the prompt for `model` (None: the default); the engine's
    refusals become domain errors, except ContextOverflowError when `overflow` asks for
    it as it is (its numbers)."""
    try:
        return await engine.prepare(messages, sampling, model=model, owner=owner)
    except ContextOverflowError as exc:
        if overflow:
            raise
        raise DomainError(str(exc), code="CONTEXT_OVERFLOW") from None
    except InvalidOptionsError as exc:
        raise BadInputError(str(exc)) from None
    except ModelUnavailableError as exc:
        # The conversation's model file is gone, or it can never fit: nothing written.
        raise DomainError(str(exc), code=exc.code) from None
    except EngineUnavailableError as exc:
        # A remote engine that is down or failing: nothing written, try again later.
        logger.warning("the engine is unavailable: %s", exc)
        raise DomainError(
            "the model server is unavailable; try again shortly",
            code="ENGINE_ERROR",
            retryable=True,
        ) from None
    except EngineError:
        # Template failures carry template internals: log them, tell the client less.
        logger.exception("could not render the prompt")
        raise DomainError(
            "the model's chat template could not render this conversation",
            code="ENGINE_ERROR",
        ) from None
