"""Chat templates: the model's own Jinja template, rendered in a sandbox.

Templates come from GGUF metadata (`tokenizer.chat_template`), i.e. from whoever made
the file, so they run in Jinja's immutable sandbox with only what Hugging Face's
`apply_chat_template` provides and real templates use: `messages`,
`add_generation_prompt`, `bos_token`, `eos_token`, `raise_exception`, `strftime_now`
and a `tojson` that keeps non-ASCII text readable.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NoReturn

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from llamaql.ports.engine import ChatMessage, TemplateError

logger = logging.getLogger(__name__)

# ChatML, for models whose file carries no template (a warning says so at start-up).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# With the fallback the model may not know `<|im_end|>` as a special token; stopping on
# its text keeps a reply from running into an invented next turn.
CHATML_STOP = "<|im_end|>"


class _TemplateRaised(Exception):
    """A template called raise_exception (e.g. roles that do not alternate)."""


def _raise_exception(message: str) -> NoReturn:
    raise _TemplateRaised(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    # Jinja's own tojson HTML-escapes `<`, `>` and `&`, which would change the prompt.
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _environment() -> ImmutableSandboxedEnvironment:
    # trim_blocks/lstrip_blocks as in transformers, which is what template authors test with.
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[loopcontrols],
        undefined=jinja2.Undefined,
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


class ChatTemplate:
    """A compiled chat template plus the token texts it may refer to."""

    def __init__(
        self,
        source: str,
        *,
        bos_token: str | None = None,
        eos_token: str | None = None,
        is_fallback: bool = False,
    ) -> None:
        self.source = source
        self.bos_token = bos_token or ""
        self.eos_token = eos_token or ""
        self.is_fallback = is_fallback
        try:
            self._template = _environment().from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"chat template does not compile: {exc.message} (line {exc.lineno})"
            ) from exc

    @property
    def extra_stops(self) -> tuple[str, ...]:
        """Stop strings the template implies beyond the model's end-of-generation tokens."""
        return (CHATML_STOP,) if self.is_fallback else ()

    def render(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True) -> str:
        """The prompt text for these messages; TemplateError when the template refuses them."""
        try:
            return self._template.render(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except _TemplateRaised as exc:
            raise TemplateError(f"chat template rejected the messages: {exc}") from exc
        except (jinja2.TemplateError, TypeError, ValueError, KeyError, IndexError) as exc:
            raise TemplateError(f"chat template failed to render: {exc}") from exc


def load_chat_template(
    source: str | None, *, bos_token: str | None, eos_token: str | None, model_name: str
) -> ChatTemplate:
    """The model's template, or ChatML (with a warning) when it has none or it is broken."""
    if source is not None:
        try:
            return ChatTemplate(source, bos_token=bos_token, eos_token=eos_token)
        except TemplateError as exc:
            logger.warning("model %s: %s; falling back to ChatML", model_name, exc)
    else:
        logger.warning("model %s has no chat template; falling back to ChatML", model_name)
    return ChatTemplate(CHATML_TEMPLATE, bos_token=bos_token, eos_token=eos_token, is_fallback=True)
