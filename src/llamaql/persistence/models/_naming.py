"""Constraint names that Alembic can address later.

SQLite can only alter a table by copying it (batch mode), and that needs every
constraint to have a known name. The package's __init__ imports this module before
any table is defined: a convention only applies to constraints created after it is set.
"""

from __future__ import annotations

from sqlmodel import SQLModel

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLModel.metadata.naming_convention = NAMING_CONVENTION
