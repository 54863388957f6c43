"""The README's settings table and the config classes never disagree: the same variables,
and every default the table quotes is the one the class has."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from llamaql.config import COMPONENTS

README = Path(__file__).resolve().parents[2] / "README.md"
HEADER = "| variable | default | meaning |"
# Defaults the table describes in words rather than quotes: a long text, a random name.
DESCRIBED = {"LLAMAQL_SYSTEM_PROMPT", "LLAMAQL_REPLICA_ID"}


def _readme_table() -> dict[str, str]:
    """Variable -> its default cell, from the table under `## Settings`."""
    lines = README.read_text().splitlines()
    start = lines.index(HEADER) + 2  # past the header and its |---| line
    rows: dict[str, str] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        variable, default = (cell.strip() for cell in line.strip("|").split("|")[:2])
        rows[variable.strip("`")] = default
    return rows


def _names(info: FieldInfo) -> list[str]:
    alias = info.validation_alias
    assert isinstance(alias, AliasChoices), "every setting names its variables"
    return [str(choice) for choice in alias.choices]


def _fields() -> dict[str, FieldInfo]:
    """Variable -> field, over every component."""
    return {
        _names(info)[0]: info for cls in COMPONENTS.values() for info in cls.model_fields.values()
    }


def _quoted(value: object) -> str:
    """A default as the table writes it: `true`, `2` for 2.0, a path as text."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_the_table_lists_every_variable_and_no_other() -> None:
    table, fields = set(_readme_table()), set(_fields())
    assert (fields - table, table - fields) == (set(), set()), "(not in the table, unknown)"


def test_the_table_quotes_each_default_as_the_classes_have_it() -> None:
    table = _readme_table()
    wrong = {}
    for variable, info in _fields().items():
        cell = table.get(variable, "")
        if variable in DESCRIBED:
            continue
        if info.default is None or info.default == ():  # unset: the cell says what then
            if cell.startswith("`"):
                wrong[variable] = (cell, "no default")
        elif not cell.startswith(f"`{_quoted(info.default)}`"):
            wrong[variable] = (cell, _quoted(info.default))
    assert not wrong, wrong  # variable: (the table's cell, the class's default)


def test_every_variable_is_llamaql_and_the_fallbacks_are_named_above_the_table() -> None:
    text = README.read_text()
    above = text[text.index("## Settings") : text.index(HEADER)]
    for info in _fields().values():
        first, *fallbacks = _names(info)
        assert re.fullmatch(r"LLAMAQL_[A-Z0-9_]+", first)
        for name in fallbacks:
            assert f"`{name}`" in above
