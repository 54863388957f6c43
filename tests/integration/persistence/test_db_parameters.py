"""Statement parameters (user text) never reach a log line or an error message."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from llamaql.persistence.db import create_db_engine

SECRET = "my diary: the password is hunter2"


async def test_parameters_are_not_logged_even_when_echoing(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_db_engine(db_url, echo=True)
    try:
        with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
            async with engine.connect() as connection:
                value = await connection.execute(text("SELECT :secret"), {"secret": SECRET})
                assert value.scalar() == SECRET
                with pytest.raises(DBAPIError) as failed:
                    await connection.execute(
                        text("SELECT * FROM no_such_table WHERE x = :secret"), {"secret": SECRET}
                    )
    finally:
        await engine.dispose()
    assert "SELECT" in caplog.text  # the statements themselves are logged
    assert SECRET not in caplog.text
    assert SECRET not in str(failed.value)
    assert "parameters hidden" in str(failed.value)
