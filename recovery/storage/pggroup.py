"""Group commit under a cooperative server (gunicorn's gevent worker): the statements of every request
that arrives while one commit is in flight go to PostgreSQL together in the next one.

Why: the webhook receipt is one small INSERT whose cost was mostly its durable commit and the process
sleeps and wake-ups around it, once per request (README, Benchmarks). A gevent worker serves many
requests in one thread, so one flusher greenlet per process sends the waiting statements as one libpq
pipeline (BEGIN, N x EXECUTE, COMMIT, Sync): one round trip, one commit, one WAL flush for all of them.
A request is answered only after that COMMIT succeeded, so a 2xx still means its row is durable. A
batch that fails is run again row by row, so a bad row fails only its own request.

Only for idempotent statements that do not depend on one another (`DriverStatement(group_commit=True)`):
a batch found broken (server restart) is sent once more on a fresh connection. Anywhere else (sync
workers, the dispatcher, tests) the statement runs alone through recovery.storage.pgdirect.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy.engine import Engine

from recovery.storage import pgdirect
from recovery.storage.greenbatch import GreenBatcher

#: Rows per transaction at most; more waiting go in the next one.
MAX_BATCH = 64
_OK = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)


def cooperative() -> bool:
    """Whether this process runs under gevent's monkey-patching (sockets yield to other greenlets)."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("socket"))


def run(engine: Engine, statement: pgdirect.Prepared, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """`statement` committed (with whatever else is waiting, under gevent) and its rows."""
    if not cooperative():
        return pgdirect.connections(engine).run(statement, params)
    group = _GROUPS.get(engine)
    if group is None:
        group = _GROUPS[engine] = GroupCommit(engine.dialect.create_connect_args(engine.url))
        weakref.finalize(engine, group.close)
    return group.run(statement, params)


class _Waiter:
    __slots__ = ("done", "error", "rows", "statement", "values")

    def __init__(self, statement: pgdirect.Prepared, values: list[bytes | None], done: Any) -> None:
        self.statement, self.values, self.done = statement, values, done
        self.rows: list[tuple[Any, ...]] = []
        self.error: BaseException | None = None


class _BatchFailed(Exception):
    """A statement of the batch failed: PostgreSQL rolled the whole transaction back."""

    def __init__(self, error: psycopg.Error) -> None:
        super().__init__(str(error))
        self.error = error


class GroupCommit:
    """The waiting statements of one engine in one process, and the greenlet that commits them."""

    def __init__(self, connect_args: tuple[Any, Any]) -> None:
        from gevent.event import Event  # only under gevent: a sync worker never builds one

        self._event = Event
        self._args = connect_args
        self._queue: GreenBatcher[_Waiter] = GreenBatcher(self._settle, MAX_BATCH)
        self._conn: psycopg.Connection[Any] | None = None
        self._prepared: set[bytes] = set()
        self.batches = self.statements = 0  # how much grouping happened (tests, diagnosis)

    def run(self, statement: pgdirect.Prepared, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        waiter = _Waiter(statement, statement.values(params), self._event())
        self._queue.put(waiter)
        waiter.done.wait()
        if waiter.error is not None:
            raise waiter.error
        return waiter.rows

    def close(self) -> None:
        self._queue.stop()
        if self._conn is not None:
            self._conn.close()

    def _settle(self, batch: list[_Waiter]) -> None:
        try:
            for waiter, rows in zip(batch, self._commit(batch), strict=True):
                waiter.rows = rows
        except _BatchFailed as failed:
            if len(batch) == 1:
                batch[0].error = failed.error
            else:  # find the culprit: each alone, so the others still commit
                for waiter in batch:
                    self._settle([waiter])
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request, never lost
            for waiter in batch:
                waiter.error = exc
        finally:
            for waiter in batch:
                waiter.done.set()

    def _commit(self, batch: list[_Waiter]) -> list[list[tuple[Any, ...]]]:
        for attempt in (1, 2):
            if self._conn is None or self._conn.closed:
                self._prepared.clear()
                cargs, cparams = self._args
                self._conn = psycopg.connect(*cargs, **cparams, autocommit=True)
                self._conn.pgconn.nonblocking = 1  # sends never block; _exchange waits cooperatively
            try:
                return self._pipeline(self._conn.pgconn, batch)
            except _BatchFailed:
                raise  # the connection is fine, a statement is not
            except psycopg.OperationalError:
                self._conn.close()  # the server went away mid-batch: once more on a fresh connection
                if attempt == 2:
                    raise
            except BaseException:
                self._conn.close()  # its state is unknown
                raise
        raise AssertionError("unreachable")

    def _pipeline(self, pg: pq.abc.PGconn, batch: list[_Waiter]) -> list[list[tuple[Any, ...]]]:
        """BEGIN, each statement, COMMIT in one round trip; the rows of each, or _BatchFailed."""
        new = {w.statement.name: w.statement for w in batch if w.statement.name not in self._prepared}
        prepare = list(new.values())
        pg.enter_pipeline_mode()
        for statement in prepare:
            pg.send_prepare(statement.name, statement.sql)
        pg.send_query_params(b"BEGIN", None)
        for waiter in batch:
            pg.send_query_prepared(waiter.statement.name, waiter.values)
        pg.send_query_params(b"COMMIT", None)
        pg.pipeline_sync()
        results = _exchange(pg)
        pg.exit_pipeline_mode()
        if pg.transaction_status != pq.TransactionStatus.IDLE:  # a failed BEGIN block outlives the Sync
            _rollback(pg)
        # A prepared statement outlives a rolled-back batch: preparing it again would fail every retry.
        self._prepared.update(s.name for s, r in zip(prepare, results, strict=False) if r.status in _OK)
        failed = next((r for r in results if r.status not in _OK), None)
        if failed is not None:
            if failed.status == pq.ExecStatus.FATAL_ERROR:
                raise _BatchFailed(psycopg.errors.error_from_result(failed))
            status = pq.ExecStatus(failed.status).name
            raise psycopg.OperationalError(f"unexpected result in a batch: {status}")
        self.batches += 1
        self.statements += len(batch)
        return [pgdirect.rows(r) for r in results[len(prepare) + 1 : -1]]


def _exchange(pg: pq.abc.PGconn) -> list[pq.abc.PGresult]:
    """Send what is queued and read every result up to the pipeline's Sync, yielding to other greenlets
    while the socket is not ready."""
    from gevent.socket import wait_read, wait_readwrite

    while pg.flush():  # 1: more to send; reading meanwhile keeps a server busy answering from stalling
        wait_readwrite(pg.socket)
        pg.consume_input()
    results: list[pq.abc.PGresult] = []
    while True:
        while pg.is_busy():
            wait_read(pg.socket)
            pg.consume_input()
        result = pg.get_result()
        if pg.status != pq.ConnStatus.OK:
            raise psycopg.OperationalError(pg.get_error_message() or "connection lost")
        if result is None:  # the end of one statement's results
            continue
        if result.status == pq.ExecStatus.PIPELINE_SYNC:
            return results
        results.append(result)


def _rollback(pg: pq.abc.PGconn) -> None:
    pg.enter_pipeline_mode()
    pg.send_query_params(b"ROLLBACK", None)
    pg.pipeline_sync()
    results = _exchange(pg)
    pg.exit_pipeline_mode()
    if any(r.status not in _OK for r in results) or pg.transaction_status != pq.TransactionStatus.IDLE:
        raise psycopg.OperationalError("a failed batch could not be rolled back")


_GROUPS: weakref.WeakKeyDictionary[Engine, GroupCommit] = weakref.WeakKeyDictionary()
