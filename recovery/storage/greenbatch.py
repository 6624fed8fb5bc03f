"""Batching under a cooperative server (gunicorn's gevent worker): what the greenlets of one process queue
while a batch is in flight is handed on together in the next one, by one flusher greenlet per queue.

Used for webhook receipts' group commit (recovery/storage/pggroup.py) and the storefront rate limits'
Redis calls (app/web/track_limits.py). The flusher is started on first use and again if it died; a
`handle` must settle every item of its batch (set its result or its error) and never raise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class GreenBatcher(Generic[T]):
    def __init__(self, handle: Callable[[list[T]], None], most: int) -> None:
        import gevent  # only under gevent: a sync worker never builds one
        from gevent.event import Event

        self._spawn, self._handle, self._most = gevent.spawn, handle, most
        self._pending: list[T] = []
        self._wake = Event()
        self._flusher: Any = None

    def put(self, item: T) -> None:
        """Queue `item` for the next batch (at most `most` items); the caller then waits on its own result."""
        self._pending.append(item)
        if self._flusher is None or self._flusher.dead:
            self._flusher = self._spawn(self._flush_forever)
        self._wake.set()

    def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.kill(block=False)

    def _flush_forever(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending[: self._most], self._pending[self._most :]
                self._handle(batch)
