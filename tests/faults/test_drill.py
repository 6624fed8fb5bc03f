"""The fault drill at a reduced size, as CI runs it: the production topology on private PostgreSQL and
Redis instances, every process killed -9 once, Redis and PostgreSQL restarted, poison payloads, orders
racing sends (app/drill). Targets: nothing lost or sent twice, nothing sent after an acknowledged order,
no deadlock, every poison payload a visible dead letter."""

from __future__ import annotations

import shutil

import pytest

from app.bench.ingest_env import free_port  # noqa: F401 - the drill's dependency, importable


def _tools() -> bool:
    from app.drill.cluster import _pg_bin

    try:
        _pg_bin("initdb")
    except RuntimeError:
        return False
    return shutil.which("redis-server") is not None


@pytest.mark.skipif(not _tools(), reason="needs PostgreSQL's server binaries and redis-server")
def test_the_reduced_drill_meets_its_targets() -> None:
    from app.drill import POISON, run

    table = run(carts=16, seed=11)
    assert table["acked"] == 16 + len(POISON) + 8  # checkouts, poison, orders: every one answered 2xx
    assert (table["lost"], table["duplicated"], table["sent_after_acknowledged_purchase"]) == (0, 0, 0), table
    assert table["deadlocks"] == 0, table
    assert table["dead_letters"] == len(POISON), table
    assert all(n >= 1 for n in table["restarts"].values()), table  # each process was killed and came back
