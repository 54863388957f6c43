"""Chat templates in the sandbox: real-world templates, errors, and the ChatML fallback."""

from __future__ import annotations

import logging

import pytest

from llamaql.engine.local.templates import CHATML_STOP, ChatTemplate, load_chat_template
from llamaql.ports.engine import ChatMessage, TemplateError

CONVERSATION = [
    ChatMessage("system", "Be brief."),
    ChatMessage("user", "Hi"),
    ChatMessage("assistant", "Hello!"),
    ChatMessage("user", "Capital of France?"),
]

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Llama 3 Instruct's template (as shipped in its GGUF files).
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)
# Mistral-style: no system role, strict alternation enforced with raise_exception.
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}"
    "{% endif %}{% endfor %}"
)


def test_chatml() -> None:
    text = ChatTemplate(CHATML).render(CONVERSATION)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nCapital of France?"
        "<|im_end|>\n<|im_start|>assistant\n"
    )


def test_llama3_uses_bos_token() -> None:
    text = ChatTemplate(LLAMA3, bos_token="<|begin_of_text|>").render(CONVERSATION[:2])
    assert text == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_mistral_alternating_turns() -> None:
    template = ChatTemplate(MISTRAL, bos_token="<s>", eos_token="</s>")
    assert template.render(CONVERSATION[1:]) == (
        "<s>[INST] Hi [/INST]Hello!</s>[INST] Capital of France? [/INST]"
    )


def test_raise_exception_becomes_template_error() -> None:
    template = ChatTemplate(MISTRAL, bos_token="<s>", eos_token="</s>")
    with pytest.raises(TemplateError, match="roles must alternate"):
        template.render(CONVERSATION)  # starts with a system message


def test_tojson_keeps_text_as_is_and_strftime_now_exists() -> None:
    template = ChatTemplate("{{ messages[0] | tojson }}|{{ strftime_now('%Y') | length }}")
    text = template.render([ChatMessage("user", "<b> & café")])
    assert text == '{"role": "user", "content": "<b> & café"}|4'


def test_sandbox_refuses_internals() -> None:
    template = ChatTemplate("{{ messages.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(TemplateError, match="failed to render"):
        template.render(CONVERSATION)


def test_sandbox_refuses_mutation() -> None:
    template = ChatTemplate("{% set _ = messages.append(1) %}x")
    with pytest.raises(TemplateError):
        template.render(CONVERSATION)


def test_missing_template_falls_back_to_chatml_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        template = load_chat_template(None, bos_token=None, eos_token=None, model_name="m")
    assert template.is_fallback
    assert template.extra_stops == (CHATML_STOP,)
    assert "no chat template" in caplog.text
    assert template.render(CONVERSATION[1:2]) == (
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_broken_template_falls_back_too(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        template = load_chat_template("{% for %}", bos_token=None, eos_token=None, model_name="m")
    assert template.is_fallback
    assert "does not compile" in caplog.text
