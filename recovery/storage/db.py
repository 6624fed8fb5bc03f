"""Engine and session factory, built by a composition root (never at import), and after-commit jobs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from recovery.storage import pgdirect, pggroup
from recovery.storage.private_files import ensure_private_file, private_dir

log = logging.getLogger(__name__)

#: Sends one job (actor name, ids) to the broker. Jobs carry ids only.
Enqueue = Callable[[str, Sequence[Any]], None]


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
        if path and path != ":memory:" and not path.startswith("file:"):
            private_dir(Path(path).parent)  # 0700 when we create it (./var), the database file 0600
            ensure_private_file(Path(path))
        # isolation_level=None hands transaction control to us, so every transaction can BEGIN IMMEDIATE:
        # SQLite then serializes writers at BEGIN (waiting busy_timeout) instead of failing them mid-way
        # when a reader tries to upgrade a stale WAL snapshot.
        # One connection per process: SQLite has one writer anyway, and threads queueing on the pool wake
        # as soon as it is free, where SQLite's busy handler would sleep in growing steps (up to 100 ms).
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False, "isolation_level": None},
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=10, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the in-process worker read while the web thread writes; foreign keys are off by default.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL survives a crash of the process (not of the machine) and saves an fsync per
    # commit, which decides the embedded default's throughput. Production durability is PostgreSQL's.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class DriverStatement:
    """A Core statement compiled once for psycopg and run on the driver's own connection. For the few
    per-message statements of a send on PostgreSQL: SQLAlchemy's execution layer (result metadata,
    parameter processing) cost more CPU than PostgreSQL spent running them. No expanding IN parameters."""

    def __init__(self, statement: Any, *, group_commit: bool = False) -> None:
        compiled = statement.compile(dialect=postgresql.psycopg.dialect())
        self.sql, self._defaults = compiled.string, compiled.params
        self._prepared = pgdirect.Prepared(self.sql, self._defaults)  # for autocommit(); a regex, once
        #: Under gevent, commit together with other requests' statements (recovery.storage.pggroup).
        self._group_commit = group_commit

    def __call__(self, conn: Connection, **params: Any) -> Any:
        """The psycopg cursor (rowcount, fetchone). `conn` must be a PostgreSQL connection."""
        return conn.connection.driver_connection.execute(self.sql, {**self._defaults, **params})

    def autocommit(self, engine: Engine, **params: Any) -> list[tuple[Any, ...]]:
        """Run alone, committed on its own, as a prepared statement on one of `engine`'s direct autocommit
        connections (recovery.storage.pgdirect): the rows it returns. Only for idempotent statements (a connection
        found dead is replaced and the statement run once more). Parameters: str, int, bool, aware
        datetime, None; cast in the SQL what PostgreSQL cannot infer. Driver errors come out as
        SQLAlchemy's (without the parameters, which may hold personal data)."""
        try:
            if self._group_commit:
                return pggroup.run(engine, self._prepared, params)
            return pgdirect.connections(engine).run(self._prepared, params)
        except psycopg.Error as exc:
            raise DBAPIError.instance(self.sql, None, exc, psycopg.Error) from exc


def dispose(engine: Engine) -> None:
    """Close `engine`'s pooled connections and its direct autocommit ones."""
    pgdirect.dispose(engine)
    engine.dispose()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose `defer()`ed jobs go to `info["enqueue"]`, which the composition root sets (none here)."""
    return sessionmaker(bind=engine, expire_on_commit=False, info={"enqueue": None})


def defer(session: Session, actor_name: str, *args: Any) -> None:
    """Queue a job to be sent only once the current transaction has committed."""
    pending = session.info.setdefault("deferred_jobs", [])
    if not pending:
        event.listen(session, "after_commit", _send_deferred, once=True)
        event.listen(session, "after_rollback", _drop_deferred, once=True)
    pending.append((actor_name, args))


def defer_batches(session: Session, actor_name: str, ids: Sequence[Any], size: int) -> None:
    """`defer` one job per `size` ids (in order): each job handles a batch with a fixed number of queries."""
    for start in range(0, len(ids), size):
        defer(session, actor_name, list(ids[start : start + size]))


def _send_deferred(session: Session) -> None:
    jobs = session.info.pop("deferred_jobs", [])
    if event.contains(session, "after_rollback", _drop_deferred):
        event.remove(session, "after_rollback", _drop_deferred)
    enqueue: Enqueue | None = session.info.get("enqueue")
    if enqueue is None:
        return
    for name, args in jobs:
        enqueue(name, args)  # the committed rows are the truth: the enqueuer logs a broker outage


def _drop_deferred(session: Session) -> None:
    session.info.pop("deferred_jobs", None)
    if event.contains(session, "after_commit", _send_deferred):
        event.remove(session, "after_commit", _send_deferred)


def insert_for(dialect: str) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (PostgreSQL and SQLite spell it alike)."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
