"""Database fixtures: every test here runs on a real SQLite file and, when
LLAMAQL_TEST_POSTGRES_URL is set, on a private PostgreSQL database too.

The repository contract: a module marked `contract` reaches storage only through the
`uow` fixture (a UnitOfWorkFactory, as services get it), and runs on the in-memory fake
of tests/fakes as well, so the fake is held to exactly what the SQL repositories pass.

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
from tests.fakes.uow import FakeStore
from tests.integration.persistence.lock_waits import LockWaits
from tests.integration.postgres import (
    POSTGRES_ENV,
    create_database,
    database_url,
    drop_database,
    scratch_database,
)

from llamaql.persistence.db import SessionFactory, create_db_engine, create_session_factory
from llamaql.persistence.migrations import upgrade_to_head
from llamaql.persistence.repositories import make_uow_factory
from llamaql.ports.repositories import UnitOfWorkFactory

POSTGRES_SKIP = "set LLAMAQL_TEST_POSTGRES_URL to run the PostgreSQL repository tests"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
CONTRACT_BACKENDS = [pytest.param("fake", id="fake"), *BACKENDS]

T = TypeVar("T")


def _in_thread(function: Callable[..., T], *args: object) -> T:
    # Alembic and these helpers run their own event loop; keep them off the test's.
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(function, *args).result()


# A test that asks for one of these reaches the database itself: no fake stands in.
_DATABASE_FIXTURES = frozenset({"db_url", "empty_db_url", "engine", "session_factory"})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Contract tests run on the fake too; the others on the databases only."""
    if "backend" in metafunc.fixturenames:
        contract = metafunc.definition.get_closest_marker("contract") is not None
        direct = not _DATABASE_FIXTURES.isdisjoint(metafunc.fixturenames)
        params = CONTRACT_BACKENDS if contract and not direct else BACKENDS
        metafunc.parametrize("backend", params, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The storage under test: "sqlite" or "postgres" (skipped without the URL), and
    "fake" for contract tests."""
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
    postgres_template: str = request.getfixturevalue("postgres_template")
    async with scratch_database("llamaql_test", postgres_template) as url:
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
def fake_store(backend: str) -> FakeStore:
    """The fake's committed state (contract tests on the fake only)."""
    if backend != "fake":
        pytest.fail(f"fake_store is the fake's; this test runs on {backend}")
    return FakeStore()


@pytest.fixture
def uow(backend: str, request: pytest.FixtureRequest) -> UnitOfWorkFactory:
    """The UnitOfWorkFactory the services get: the SQL one on the database, or the
    in-memory fake's for contract tests."""
    if backend == "fake":
        store: FakeStore = request.getfixturevalue("fake_store")
        return store.factory
    session_factory: SessionFactory = request.getfixturevalue("session_factory")
    return make_uow_factory(session_factory)


@pytest.fixture
def lock_waits(backend: str, request: pytest.FixtureRequest) -> LockWaits:
    """`await lock_waits()`: how many units of work wait for a lock now."""
    if backend == "fake":
        return LockWaits(store=request.getfixturevalue("fake_store"))
    return LockWaits(engine=request.getfixturevalue("engine"))


@pytest.fixture
def alice() -> uuid.UUID:
    return uuid.uuid4()


@pytest.fixture
def bob() -> uuid.UUID:
    return uuid.uuid4()
