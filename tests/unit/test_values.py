"""The shared values: each fact written once, and the layers that must repeat a name (the
tables' columns, the GraphQL contract) held to it."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from sqlalchemy import create_engine
from sqlmodel import Session, SQLModel

from llamaql.api.inputs import GenerationOptionsInput
from llamaql.api.types import GenerationOptions
from llamaql.api.types import Usage as UsageType
from llamaql.persistence.models import Conversation as ConversationRow
from llamaql.persistence.models import Message as MessageRow
from llamaql.persistence.repositories.rows import conversation_value, message_value, write_usage
from llamaql.ports.values import (
    OPTION_KEYS,
    UPDATABLE_FIELDS,
    USAGE_FIELDS,
    Conversation,
    Message,
    SamplingOptions,
    Usage,
)


def _graphql_fields(cls: type) -> tuple[str, ...]:
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    return tuple(field.python_name for field in definition.fields)


def test_every_usage_figure_has_a_column_and_a_graphql_field() -> None:
    assert set(USAGE_FIELDS) <= set(MessageRow.model_fields)
    assert _graphql_fields(UsageType) == USAGE_FIELDS


def test_the_graphql_options_are_the_sampling_options() -> None:
    assert _graphql_fields(GenerationOptions) == OPTION_KEYS
    assert _graphql_fields(GenerationOptionsInput) == OPTION_KEYS


def test_updatable_fields_are_conversation_columns() -> None:
    assert set(UPDATABLE_FIELDS) <= set(ConversationRow.model_fields)


def test_options_round_trip_through_their_stored_form() -> None:
    options = SamplingOptions(temperature=0.5, seed=3, stop=("\n\n",))
    stored = options.to_dict()
    assert stored == {"temperature": 0.5, "seed": 3, "stop": ["\n\n"]}
    assert SamplingOptions.from_dict(stored) == options
    assert SamplingOptions.from_dict({"colour": "red"}) == SamplingOptions()


def test_a_request_overrides_only_the_options_it_sets() -> None:
    defaults = SamplingOptions(temperature=0.2, max_tokens=9, stop=("x",))
    request = SamplingOptions(max_tokens=5, stop=())
    assert defaults.overridden_by(request) == SamplingOptions(
        temperature=0.2, max_tokens=5, stop=()
    )
    assert defaults.overridden_by(SamplingOptions()) is defaults


def test_rows_become_frozen_values() -> None:
    row = ConversationRow(user_id=uuid.uuid4(), title="t", options={"top_k": 5})
    value = conversation_value(row)
    assert isinstance(value, Conversation)
    assert (value.id, value.title, value.options) == (row.id, "t", SamplingOptions(top_k=5))
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.title = "changed"  # type: ignore[misc]


def test_a_message_has_usage_once_it_is_saved_with_it() -> None:
    row = MessageRow(conversation_id=uuid.uuid4(), user_id=uuid.uuid4(), seq=1, kind=2)
    assert message_value(row).usage is None
    write_usage(row, Usage(prompt_tokens=7, completion_tokens=3, tokens_per_second=9.5))
    value = message_value(row)
    assert isinstance(value, Message)
    assert value.usage == Usage(prompt_tokens=7, completion_tokens=3, tokens_per_second=9.5)
    assert row.prompt_tokens == 7


def test_a_row_with_an_expired_column_is_read_through_its_attributes() -> None:
    engine = create_engine("sqlite://")
    SQLModel.metadata.create_all(engine)
    with Session(engine) as session:
        conversation = ConversationRow(user_id=uuid.uuid4(), options={})
        row = MessageRow(
            conversation_id=conversation.id, user_id=conversation.user_id, seq=1, kind=3, text="hi"
        )
        session.add_all([conversation, row])
        session.commit()  # expires every column: the next read loads them
        assert "text" not in row.__dict__
        value = message_value(row)
    assert (value.id, value.text, value.seq) == (row.id, "hi", 1)
