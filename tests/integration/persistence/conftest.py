"""Database fixtures: every test here runs on a real SQLite file and, when
LLAMAQL_TEST_POSTGRES_URL is set, on a private PostgreSQL database too.

Each PostgreSQL test gets its own uniquely named database (dropped afterwards), copied
from a template migrated once per session, so parallel runs and leftovers don't collide.
SQLite tests likewise get a copy of a migrated file.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.integration.postgres import (
    POSTGRES_ENV,
    create_database,
    database_url,
    drop_database,
    scratch_database,
)

from llamaql.db import SessionFactory, create_db_engine, create_session_factory
from llamaql.migrations import upgrade_to_head
from llamaql.repositories import make_uow_factory
from llamaql.services.ports import UnitOfWorkFactory

POSTGRES_SKIP = "set LLAMAQL_TEST_POSTGRES_URL to run the PostgreSQL repository tests"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]

T = TypeVar("T")


def _in_thread(function: Callable[..., T], *args: object) -> T:
    # Alembic and these helpers run their own event loop; keep them off the test's.
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(function, *args).result()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database under test: "sqlite" or "postgres" (skipped without the URL)."""
    name: str = request.param
    if name == "postgres" and not os.environ.get(POSTGRES_ENV):
        pytest.skip(POSTGRES_SKIP)
    return name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    _in_thread(upgrade_to_head, f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A PostgreSQL database migrated to head once per session (its name)."""
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(POSTGRES_SKIP)
    name = _in_thread(asyncio.run, create_database("llamaql_tmpl"))
    try:
        _in_thread(upgrade_to_head, database_url(name))
        yield name
    finally:
        _in_thread(asyncio.run, drop_database(name))


@pytest.fixture
async def empty_db_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A URL of a database that exists but holds no tables."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    async with scratch_database("llamaql_test") as url:
        yield url


@pytest.fixture
async def db_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """A URL of a private database migrated to head."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "llamaql.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    template = request.getfixturevalue("postgres_template")
    async with scratch_database("llamaql_test", template) as url:
        yield url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """The application's engine on the migrated database, disposed afterwards."""
    engine = create_db_engine(db_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def session_factory(engine: AsyncEngine) -> SessionFactory:
    return create_session_factory(engine)


@pytest.fixture
def uow(session_factory: SessionFactory) -> UnitOfWorkFactory:
    """The UnitOfWorkFactory the services get."""
    return make_uow_factory(session_factory)


@pytest.fixture
def alice() -> uuid.UUID:
    return uuid.uuid4()


@pytest.fixture
def bob() -> uuid.UUID:
    return uuid.uuid4()
