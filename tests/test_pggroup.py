"""Group commit of webhook receipts under gevent (recovery.storage.pggroup), on real PostgreSQL.

gevent's monkey-patching cannot be undone, so the deliveries run in a child process patched as gunicorn's
gevent worker patches itself (tests/support/group_commit_probe.py), and this test reads its report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from app.runtime import build_runtime
from recovery.storage import pggroup
from tests.conftest import add_store, make_settings
from tests.support.shopify import SHOP

ROOT = Path(__file__).resolve().parents[1]


def test_without_gevent_statements_run_alone() -> None:
    assert not pggroup.cooperative()  # so every other test exercises recovery.storage.pgdirect's own path


def test_concurrent_deliveries_share_commits_and_a_bad_one_fails_alone(pg_url: str, tmp_path: Path) -> None:
    rt = build_runtime(make_settings(pg_url, tmp_path))
    add_store(rt)
    rt.close()
    probe = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "tests.support.group_commit_probe", pg_url, SHOP],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr[-3000:]
    report = json.loads(probe.stdout.strip().splitlines()[-1])
    assert report["cooperative"] is True

    # 40 at once: each id accepted exactly once, the repeats answered as duplicates, in fewer commits.
    assert report["crowd"].count("accepted") == 30
    assert report["crowd"].count("duplicate") == 10
    assert report["statements"] == 40
    assert 1 <= report["batches"] < 40

    # The refused one fails alone; the four sent in the same batch are stored.
    assert report["mixed"][2] == "error: DataError/InvalidTextRepresentation"
    assert [r for i, r in enumerate(report["mixed"]) if i != 2] == ["accepted"] * 4

    # A dropped connection is replaced: the next deliveries are accepted.
    assert report["terminated"] >= 1
    assert report["after_restart"] == ["accepted"] * 5

    # No server: SQLAlchemy's OperationalError for each (the app's 503 handler), no hang.
    assert report["unreachable"] == ["error: OperationalError/OperationalError"] * 2

    stored = set(report["stored"])
    assert stored == {f"crowd-{i}" for i in range(30)} | {f"mixed-{i}" for i in (0, 1, 3, 4)} | {
        f"later-{i}" for i in range(5)
    }
