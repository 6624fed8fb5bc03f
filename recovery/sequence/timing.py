"""Policy durations, scaled: CARTRESQ_TIME_SCALE=3600 makes an hour pass in a second (demo, e2e tests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Timing:
    time_scale: float = 1.0

    def span(self, seconds: float) -> timedelta:
        """A policy duration as it passes in this process."""
        return timedelta(seconds=seconds / self.time_scale)
