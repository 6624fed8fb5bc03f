"""Lock races, synchronized on what the database says rather than on sleeps.

A race test needs the other side to be *waiting for the lock* before it lets go; a fixed sleep only hopes
so, and on a loaded machine the test then passes without exercising the race. These helpers wait for the
fact itself: PostgreSQL reports lock waits in pg_stat_activity; SQLite takes its write lock at the
`BEGIN IMMEDIATE` every transaction starts with (recovery.storage.db), so a thread waiting for it is inside that
statement's execution.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Engine

POLL = 0.01


def _pg_lock_waiters(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        )


def _sqlite_thread_waits(thread: threading.Thread) -> bool:
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        name = frame.f_code.co_name
        if name == "_do_get" and "pool" in frame.f_code.co_filename:  # queued for the process's one connection
            return True
        if name in ("do_execute", "do_execute_no_params") and str(frame.f_locals.get("statement", "")).startswith("BEGIN IMMEDIATE"):
            return True
        frame = frame.f_back
    return False


def wait_until_lock_wait(engine: Engine, thread: threading.Thread, timeout: float = 30.0) -> str:
    """Return "waiting" once `thread` waits for a lock held elsewhere, or "finished" if it ended without
    waiting (the guard under test is missing). Polls the fact, with a generous bound for a loaded machine."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not thread.is_alive():
            return "finished"
        if engine.dialect.name == "postgresql":
            if _pg_lock_waiters(engine):
                return "waiting"
        elif _sqlite_thread_waits(thread):
            return "waiting"
        time.sleep(POLL)
    raise AssertionError(f"the thread neither waited for a lock nor finished within {timeout:.0f} s")


@contextmanager
def store_rows_locked_or_raise(engine: Engine) -> Iterator[None]:
    """Take every store row for update without waiting: raises if any transaction holds one (or, on SQLite,
    holds the database's write lock) right now."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("SELECT id FROM stores FOR UPDATE NOWAIT")).all()
            yield
        return
    # this process's one connection must be free (an order in the same process would queue for it) ...
    assert engine.pool.checkedout() == 0, "the process's SQLite connection is held"  # type: ignore[attr-defined]
    path = engine.url.database  # ... and no other process may hold the write lock
    conn = sqlite3.connect(str(path), timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")  # "database is locked" at once if a writer is in a transaction
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()
