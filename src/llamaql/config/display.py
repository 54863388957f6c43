"""How settings appear in errors and logs: by the variable a user set, never a secret,
and a URL without its password."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

# Values never echoed in an error message or a summary.
SECRET_FIELDS = frozenset({"jwt_secret", "engine_api_key"})
_URL_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


def redact_url(url: str) -> str:
    """The URL with its password replaced by ***, for logs and error messages."""
    return _URL_PASSWORD.sub(r"\1***@", url)


def _shown(field: str, value: object) -> str:
    if field in SECRET_FIELDS:
        return "<hidden>"
    if isinstance(value, str):
        return repr(redact_url(value))
    return repr(value)


def _variable_name(loc: tuple[int | str, ...], fields: Mapping[str, FieldInfo]) -> str:
    field = str(loc[0]) if loc else "?"
    info = fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices):
        names = [str(choice) for choice in alias.choices]
        set_names = [name for name in names if name in os.environ]
        return (set_names or names)[0]
    return field


def describe_error(error: ErrorDetails, fields: Mapping[str, FieldInfo]) -> str:
    """`VARIABLE='value': what is wrong`, or a rule across variables' own message."""
    loc = tuple(error["loc"])
    if not loc:  # a rule across variables: its message names them
        context: Mapping[str, Any] = error.get("ctx", {})
        return str(context.get("error", error["msg"]))
    shown = _shown(str(loc[0]), error.get("input"))
    return f"{_variable_name(loc, fields)}={shown}: {error['msg']}"
