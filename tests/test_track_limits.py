"""The /track limits under gevent (app/web/track_limits.py): the checks of concurrent requests share Redis
round trips, count exactly as separate calls would, and an address over its limit is refused locally.

gevent's monkey-patching cannot be undone, so the requests run in a child process patched as gunicorn's
gevent worker patches itself (tests/support/limit_batch_probe.py), and this test reads its report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_concurrent_checks_share_round_trips_and_never_pass_the_shared_limits(redis_url: str) -> None:
    probe = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "tests.support.limit_batch_probe", redis_url],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr[-3000:]
    report = json.loads(probe.stdout.strip().splitlines()[-1])
    assert report["batched"] is True

    # 14 at once from one address (10 a minute): exactly 10 pass, in fewer script calls than requests.
    crowd = report["crowd"]
    assert crowd.count(None) == 10
    assert all(r[0] == 0 and 1 <= r[1] <= 60 for r in crowd if r is not None)  # the address refused them
    assert report["requests"] == 14 and 1 <= report["calls"] < 14
    # A second process shares the windows: the shop (15 a minute) has 5 left, whatever the address.
    others = report["others"]
    assert others.count(None) == 5
    assert all(r[0] == 1 for r in others if r is not None)  # refused for the shop, not the address
    # The address still over its limit: refused by this process, no round trip.
    assert [r[0] for r in report["again"]] == [0, 0, 0] and report["again_calls"] == 0
    # No Redis: each process limits alone (10 of 12 pass), nothing hangs or fails.
    assert report["unreachable"].count(None) == 10
