"""One statement, committed on its own, through libpq's prepared-statement interface (PostgreSQL only).

For the hottest path there is (every webhook is one INSERT): psycopg's cursor layer (adapting each
parameter, building a cursor and its loaders) and SQLAlchemy's pool checkout/checkin together cost the
web process about as much CPU as the handler's own work. Here a statement is prepared once per
connection and run with `PGconn.exec_prepared` (which releases the GIL while it waits); parameters go as
text and PostgreSQL infers their types, so statements cast what it cannot infer. Connections stay in
autocommit and are kept per engine on a stack (list.append/pop are atomic: no lock), so a threaded server
holds at most one per concurrent request and a sync worker exactly one.
"""

from __future__ import annotations

import itertools
import re
import weakref
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy.engine import Engine

_NAMES = itertools.count(1)
_PARAM = re.compile(r"%\((\w+)\)s")
#: Result columns decoded by type OID (text format): int2/int4/int8, bool; anything else as text.
_INT_OIDS = frozenset((20, 21, 23))
_BOOL_OID = 16


class Prepared:
    """The text of a statement in psycopg's `%(name)s` style, rewritten for libpq (`$1`…)."""

    def __init__(self, sql: str, defaults: Mapping[str, Any]) -> None:
        self.names: list[str] = []
        self.sql = _PARAM.sub(self._number, sql).encode()
        self.defaults = dict(defaults)
        self.name = f"cartresq_{next(_NAMES)}".encode()

    def _number(self, match: re.Match[str]) -> str:
        if match.group(1) not in self.names:
            self.names.append(match.group(1))
        return f"${self.names.index(match.group(1)) + 1}"

    def values(self, params: Mapping[str, Any]) -> list[bytes | None]:
        merged = {**self.defaults, **params}
        return [_text(merged[name]) for name in self.names]


def _text(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bool):  # before int: bool is an int
        return b"t" if value else b"f"
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise TypeError("naive datetime: pass an aware one (utcnow())")
        return value.isoformat().encode()
    raise TypeError(f"no text form for a {type(value).__name__} parameter")


class _Conn:
    __slots__ = ("conn", "prepared")

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn, self.prepared = conn, set[bytes]()

    def run(self, statement: Prepared, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        pgconn = self.conn.pgconn
        if statement.name not in self.prepared:
            _check(pgconn, pgconn.prepare(statement.name, statement.sql))
            self.prepared.add(statement.name)
        result = pgconn.exec_prepared(statement.name, statement.values(params))
        _check(pgconn, result)
        return rows(result)


def rows(result: pq.abc.PGresult) -> list[tuple[Any, ...]]:
    """A result's rows, decoded by column type (see _INT_OIDS)."""
    decoders = [_decoder(result.ftype(col)) for col in range(result.nfields)]
    return [
        tuple(
            None if (raw := result.get_value(row, col)) is None else decode(raw)
            for col, decode in enumerate(decoders)
        )
        for row in range(result.ntuples)
    ]


def _decoder(oid: int) -> Any:
    if oid in _INT_OIDS:
        return int
    return _bool if oid == _BOOL_OID else bytes.decode


def _bool(raw: bytes) -> bool:
    return raw == b"t"


def _check(pgconn: pq.abc.PGconn, result: pq.abc.PGresult) -> None:
    if result.status in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
        return
    if pgconn.status != pq.ConnStatus.OK:  # the server went away: no SQLSTATE to map
        raise psycopg.OperationalError(pgconn.get_error_message() or "connection lost")
    raise psycopg.errors.error_from_result(result)


class Connections:
    """The idle autocommit connections of one engine."""

    def __init__(self, engine: Engine) -> None:
        self._args = engine.dialect.create_connect_args(engine.url)
        self._idle: list[_Conn] = []
        self._keep = engine.pool.size() if hasattr(engine.pool, "size") else 5

    def run(self, statement: Prepared, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Only for idempotent statements: a connection found dead (the server restarted) is dropped and
        the statement run once more on a fresh one."""
        for attempt in (1, 2):
            conn = self._take()
            try:
                rows = conn.run(statement, params)
            except psycopg.OperationalError:
                conn.conn.close()
                if attempt == 2:
                    raise
                continue
            except psycopg.Error:
                self._give(conn)  # a failed statement leaves an autocommit connection idle and usable
                raise
            except BaseException:
                conn.conn.close()  # interrupted mid-statement: its state is unknown
                raise
            self._give(conn)
            return rows
        raise AssertionError("unreachable")

    def _take(self) -> _Conn:
        try:
            return self._idle.pop()
        except IndexError:
            cargs, cparams = self._args
            return _Conn(psycopg.connect(*cargs, **cparams, autocommit=True))

    def _give(self, conn: _Conn) -> None:
        if conn.conn.closed or len(self._idle) >= self._keep:
            conn.conn.close()
        else:
            self._idle.append(conn)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().conn.close()


_BY_ENGINE: weakref.WeakKeyDictionary[Engine, Connections] = weakref.WeakKeyDictionary()


def connections(engine: Engine) -> Connections:
    found = _BY_ENGINE.get(engine)
    if found is None:
        found = _BY_ENGINE[engine] = Connections(engine)
        weakref.finalize(engine, found.close)  # an engine dropped without dispose() closes them too
    return found


def dispose(engine: Engine) -> None:
    found = _BY_ENGINE.pop(engine, None)
    if found is not None:
        found.close()
