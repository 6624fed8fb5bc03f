"""Run under gevent (as gunicorn's gevent worker does): concurrent webhook receipts through
recovery.storage.pggroup on a real PostgreSQL database; prints what happened as JSON for tests/test_pggroup.py.

Usage: python -m tests.support.group_commit_probe DATABASE_URL SHOP
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402 - after monkey-patching, as in a gevent worker
import sys  # noqa: E402

import gevent  # noqa: E402
import psycopg  # noqa: E402

from recovery.storage import pggroup  # noqa: E402
from recovery.storage.db import make_engine  # noqa: E402
from recovery.intake.deliveries import record_webhook  # noqa: E402

URL, SHOP = sys.argv[1], sys.argv[2]
PAYLOAD = {"id": 1, "token": "t", "email": "shopper@example.com", "line_items": []}


def receive(delivery_id: str, raw: str | None = None, to: object = None) -> object:
    try:
        return record_webhook(
            to or engine, platform="shopify", shop=SHOP, topic="checkouts/update", delivery_id=delivery_id,
            triggered_at=None, payload=PAYLOAD, always=False, raw=raw or json.dumps(PAYLOAD),
        )[1]  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - reported to the test
        return f"error: {type(exc).__name__}/{type(getattr(exc, 'orig', exc)).__name__}"


def together(calls: list[tuple]) -> list[object]:
    greenlets = [gevent.spawn(receive, *call) for call in calls]
    gevent.joinall(greenlets, raise_error=True)
    return [g.value for g in greenlets]


engine = make_engine(URL)
report: dict[str, object] = {"cooperative": pggroup.cooperative()}
# 1. One delivery PostgreSQL refuses (not JSON) among four good ones sent with it, in the first batch
#    (which also prepares the statement).
mixed = [("mixed-0",), ("mixed-1",), ("mixed-bad", "{not json"), ("mixed-3",), ("mixed-4",)]
report["mixed"] = together(mixed)
group = pggroup._GROUPS[engine]
first_batches, first_statements = group.batches, group.statements
# 2. 40 deliveries at once, 10 of them repeating an earlier id (some in the same batch as their first).
report["crowd"] = together([(f"crowd-{i % 30}",) for i in range(40)])
report["batches"], report["statements"] = group.batches - first_batches, group.statements - first_statements
# 3. The server drops the flusher's connection (as on a restart); the next deliveries still land.
plain = URL.replace("postgresql+psycopg://", "postgresql://")
with psycopg.connect(plain, autocommit=True) as admin:
    report["terminated"] = admin.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
    ).fetchone()[0]
report["after_restart"] = together([(f"later-{i}",) for i in range(5)])
# 4. No server at all: every waiting request gets the error (the route answers 503), none hangs.
nowhere = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
report["unreachable"] = together([("gone-0", None, nowhere), ("gone-1", None, nowhere)])
with psycopg.connect(plain, autocommit=True) as conn:
    report["stored"] = sorted(r[0] for r in conn.execute("SELECT delivery_id FROM webhook_deliveries"))
print(json.dumps(report))
