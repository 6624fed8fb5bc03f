"""The time-sensitive tests, run again at hours spread over the day and across New York's DST changes.

The recovery loop judges quiet hours, send windows and daily caps in the shopper's local time. A test that
reads the wall clock where it should use an injected time passes for some hours of the day and fails for
others (a submission whose CI ran at 00:50 UTC did not land). Each case below runs these files in a child
pytest whose wall clock starts at the given instant (CARTRESQ_TEST_CLOCK, tests/conftest.py; time-machine
moves `time.time` and `datetime.now`, not the monotonic clocks), so such a test fails here, in every run.
SQLite only: the hour-of-day logic is the same on PostgreSQL, which the main run covers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import CLOCK

ROOT = Path(__file__).resolve().parent.parent

TIME_SENSITIVE = [
    "tests/test_clock_matrix.py::test_the_wall_clock_is_where_the_matrix_put_it",
    "tests/test_recovery_loop.py",
    "tests/test_policy_loop.py",
    "tests/test_policy_units.py",
    "tests/test_policy_properties.py",
    "tests/test_policy_loop_properties.py",
    "tests/test_push_loop.py",
    "tests/test_channels_sendgrid_loop.py",
    "tests/test_outbox.py",
    "tests/test_exit_offer.py",
]

CLOCKS = {
    "00:30 UTC": "2026-12-10T00:30:00+00:00",
    "06:00 UTC": "2026-12-10T06:00:00+00:00",
    "12:00 UTC": "2026-12-10T12:00:00+00:00",
    "20:30 UTC": "2026-12-10T20:30:00+00:00",
    # 01:45 in New York, a quarter of an hour before clocks fall back (2026-11-01) and spring forward (2027-03-14)
    "NY fall back": "2026-11-01T05:45:00+00:00",
    "NY spring forward": "2027-03-14T06:45:00+00:00",
}


def test_the_wall_clock_is_where_the_matrix_put_it() -> None:
    """In a child run the clock starts at CARTRESQ_TEST_CLOCK (and keeps ticking); in the main run, untouched."""
    if not CLOCK:
        pytest.skip("the main run keeps the real clock")
    moved = datetime.now(UTC) - datetime.fromisoformat(CLOCK)
    assert timedelta(0) <= moved < timedelta(minutes=30)


@pytest.mark.skipif(bool(CLOCK), reason="already a child run of the matrix")
@pytest.mark.parametrize("clock", list(CLOCKS.values()), ids=list(CLOCKS))
def test_time_sensitive_tests_pass_at_this_hour(clock: str, tmp_path: Path) -> None:
    env = {**os.environ, "CARTRESQ_TEST_CLOCK": clock}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-k", "not postgresql",
               f"--basetemp={tmp_path / 'child'}", *TIME_SENSITIVE]
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    tail = "\n".join(run.stdout.splitlines()[-40:])
    assert run.returncode == 0, f"at {clock}:\n{tail}\n{run.stderr[-2000:]}"
    assert f"wall clock moved to {clock}" in run.stdout and " passed" in tail
