"""An in-memory channel for tests and benchmarks: records what was sent, or fails on demand."""

from __future__ import annotations

import threading

from recovery.sending.channels.base import Outbound, SendResult


class FakeChannel:
    def __init__(self, fail_with: Exception | None = None) -> None:
        self.sent: list[Outbound] = []
        self.fail_with = fail_with  # may be set or cleared between sends
        # Worker threads share one instance; the lock keeps `sent` and the ids consistent.
        self._lock = threading.Lock()

    def send(self, message: Outbound) -> SendResult:
        with self._lock:
            if self.fail_with is not None:
                raise self.fail_with
            self.sent.append(message)
            return SendResult(f"fake:{len(self.sent)}")
