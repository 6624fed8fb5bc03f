"""Single statements on libpq's prepared-statement interface (recovery.storage.pgdirect), on real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from recovery.storage import pgdirect
from recovery.storage.db import DriverStatement, dispose, make_engine

_ECHO = DriverStatement(text(
    "SELECT CAST(:n AS bigint) AS n, CAST(:flag AS boolean) AS flag, CAST(:at AS timestamptz) AS at, "
    "CAST(:word AS text) AS word, CAST(:missing AS text) AS missing"
))  # fmt: skip
_BACKEND = DriverStatement(text("SELECT pg_backend_pid()"))
_FAIL = DriverStatement(text("SELECT 1 / CAST(:zero AS int)"))


@pytest.fixture
def engine(pg_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(pg_url)
    yield engine
    dispose(engine)


def test_parameters_go_as_text_and_rows_come_back_typed(engine) -> None:  # type: ignore[no-untyped-def]
    at = datetime(2026, 12, 4, 17, 30, 5, 123456, tzinfo=UTC)
    rows = _ECHO.autocommit(engine, n=2**40, flag=False, at=at, word="héllo, 'world'", missing=None)
    n, flag, stamp, word, missing = rows[0]
    assert (n, flag, word, missing) == (2**40, False, "héllo, 'world'", None)
    assert stamp.startswith("2026-12-04 17:30:05.123456")  # timestamptz as PostgreSQL's text
    with pytest.raises(TypeError, match="naive datetime"):
        _ECHO.autocommit(engine, n=1, flag=True, at=datetime(2026, 1, 1), word="", missing=None)  # noqa: DTZ001


def test_one_connection_is_reused_and_a_dead_one_replaced(engine, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    first = _BACKEND.autocommit(engine)[0][0]
    assert _BACKEND.autocommit(engine)[0][0] == first  # kept, not reopened per statement
    with psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
    # The server dropped it (as on a restart): the statement runs again on a fresh connection
    replacement = _BACKEND.autocommit(engine)[0][0]
    assert replacement != first


def test_a_failing_statement_is_sqlalchemys_error_without_parameters_and_keeps_the_connection(engine) -> None:  # type: ignore[no-untyped-def]
    before = _BACKEND.autocommit(engine)[0][0]
    with pytest.raises(DBAPIError) as caught:
        _FAIL.autocommit(engine, zero=0)
    assert isinstance(caught.value.orig, psycopg.errors.DivisionByZero)
    assert caught.value.params is None  # statement parameters may hold personal data
    assert _BACKEND.autocommit(engine)[0][0] == before


def test_no_server_is_sqlalchemys_operational_error() -> None:
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    with pytest.raises(DBAPIError) as caught:
        _BACKEND.autocommit(engine)
    assert isinstance(caught.value.orig, psycopg.OperationalError)
    dispose(engine)


def test_dispose_closes_the_kept_connections(engine) -> None:  # type: ignore[no-untyped-def]
    _BACKEND.autocommit(engine)
    kept = pgdirect.connections(engine)._idle[0].conn
    dispose(engine)
    assert kept.closed
