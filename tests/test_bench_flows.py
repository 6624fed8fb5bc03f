"""`cartresq bench flows` runs end to end on a small fan-out (the figures themselves are the bench's)."""

from __future__ import annotations

import psycopg
import pytest

from app.bench import flows
from tests.support import services


@pytest.mark.slow
def test_flows_bench_smoke_run() -> None:
    try:
        psycopg.connect(services.PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        services.unavailable("PostgreSQL", exc)
    d = flows.run_flows(carts=300, others=100, repeats=1, admin_url=services.PG_ADMIN_URL)
    assert d["planned"] + d["holdout"] + d["cart_holdout"] == 300  # each holder planned or held out, once
    assert d["planned"] > 200 and d["ratio"] > 0
    assert "ratio" in flows.format_flows(d)
