"""Seed the dashboard bench's own PostgreSQL database: stores, carts, messages, orders and holdout
assignments made by generate_series inside PostgreSQL (no row crosses the wire), then the daily figures.

Default size (issue 19): 2,000 stores, 5,000,000 carts, about 15,000,000 messages. One store, the BIG one
(id 1), holds a tenth of all carts, so the pages are measured at a large store and at a typical one.
Triggers are off during the load (session_replication_role = replica: the load is one bulk write whose
figures `rebuild_all` counts at the end); the pages then run on a normal connection, triggers on.

    python -m app.bench.dashboard_seed --database cartresq_bench_dashboard --carts 5000000 --stores 2000
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import psycopg

ZONES = ("UTC", "America/New_York", "America/Los_Angeles", "Europe/London", "Europe/Berlin", "Asia/Kolkata", "Australia/Sydney")
DEFAULT_DATABASE = "cartresq_bench_dashboard"
DEFAULT_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"

# h(i, k): a deterministic pseudo-random integer 0..999 per row and purpose (no random(): reruns are equal).
HASH = "CREATE OR REPLACE FUNCTION pg_temp.h(i bigint, k int) RETURNS int LANGUAGE sql IMMUTABLE AS " \
       "$$ SELECT ((hashint8(i * 7919 + k) & 2147483647) % 1000)::int $$"  # fmt: skip

STORES = """
INSERT INTO stores (id, platform, domain, name, plan, settings, timezone, currency, installed_at, experiment_salt)
SELECT g, 'shopify', 'bench-' || g || '.myshopify.com', 'Bench store ' || g, 'free', '{{}}'::jsonb,
       (ARRAY[{zones}])[1 + g %% {nzones}], 'USD', now() - interval '400 days', md5(g::text)
FROM generate_series(1, %(stores)s) g
"""

# Cart i: store 1 for the first tenth, the others round robin. Status: 10 % active (never abandoned),
# 62 % abandoned, 14 % recovered, 14 % completed; abandoned over the last 365 days.
CARTS = """
INSERT INTO carts (id, store_id, email, checkout_token, accepts_email, accepts_sms, line_items, currency, subtotal, total,
                   status, source, platform_updated_at, last_activity_at, abandoned_at, recovered_at, completed_at,
                   created_at, updated_at)
SELECT i, store_id, 'shopper' || i || '@example.com', md5(i::text), true, false, '[]'::jsonb, 'USD', amount, amount,
       status, 'webhook', at - interval '2 hours', at - interval '1 hour',
       CASE WHEN status = 'active' THEN NULL ELSE at END,
       CASE WHEN status = 'recovered' THEN at + interval '6 hours' END,
       CASE WHEN status IN ('recovered', 'completed') THEN at + interval '6 hours' END,
       at - interval '3 hours', at
FROM (
  SELECT i,
         CASE WHEN i <= %(big)s THEN 1 ELSE 2 + (i %% (%(stores)s - 1)) END AS store_id,
         (20 + pg_temp.h(i, 1) / 5.0)::numeric(18, 4) AS amount,
         CASE WHEN pg_temp.h(i, 2) < 100 THEN 'active' WHEN pg_temp.h(i, 2) < 720 THEN 'abandoned'
              WHEN pg_temp.h(i, 2) < 860 THEN 'recovered' ELSE 'completed' END AS status,
         now() - (pg_temp.h(i, 3) * 365 / 1000.0 + pg_temp.h(i, 4) / 1000.0) * interval '1 day' AS at
  FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) i
) g
"""

ASSIGNMENTS = """
INSERT INTO experiment_assignments (store_id, cart_id, experiment, variant, assigned_at, unit)
SELECT store_id, id, 'holdout', CASE WHEN pg_temp.h(id, 5) < 100 THEN 'holdout' ELSE 'treatment' END, abandoned_at, md5(email)
FROM carts WHERE abandoned_at IS NOT NULL AND id BETWEEN %(lo)s AND %(hi)s
"""

# Treated carts get steps 1-3 and, for 70 %, a 4th (3.7 a cart: ~15 M messages at 5 M carts). Stage by hash:
# each later stage a subset of the one before; cancelled ones carry a real reason code.
MESSAGES = """
INSERT INTO recovery_messages (store_id, cart_id, step, channel, template, due_at, status, reason, attempts, created_at,
                               sent_at, delivery_status, delivery_updated_at, opened_at, clicked_at)
SELECT c.store_id, c.id, s, CASE WHEN s = 3 THEN 'sms' ELSE 'email' END,
       (ARRAY['gentle_reminder', 'value_proposition', 'offer', 'final_call'])[s], c.abandoned_at + s * interval '20 hours',
       CASE WHEN sent THEN 'sent' ELSE 'cancelled' END, CASE WHEN sent THEN NULL ELSE 'shopper ordered' END,
       CASE WHEN sent THEN 1 ELSE 0 END, c.abandoned_at,
       CASE WHEN sent THEN c.abandoned_at + s * interval '20 hours' END,
       CASE WHEN sent AND stage >= 1 THEN 'delivered' END,
       CASE WHEN sent AND stage >= 1 THEN c.abandoned_at + s * interval '20 hours' END,
       CASE WHEN sent AND stage >= 2 THEN c.abandoned_at + s * interval '21 hours' END,
       CASE WHEN sent AND stage >= 3 THEN c.abandoned_at + s * interval '21 hours' END
FROM carts c JOIN experiment_assignments a ON a.cart_id = c.id AND a.experiment = 'holdout' AND a.variant = 'treatment'
CROSS JOIN LATERAL (
  SELECT s, pg_temp.h(c.id, 10 + s) < 850 AND NOT (c.status IN ('recovered', 'completed') AND s >= 3) AS sent,
         CASE WHEN pg_temp.h(c.id, 20 + s) < 900 THEN 1 ELSE 0 END + CASE WHEN pg_temp.h(c.id, 30 + s) < 300 THEN 1 ELSE 0 END
         + CASE WHEN pg_temp.h(c.id, 40 + s) < 100 THEN 1 ELSE 0 END AS stage
  FROM generate_series(1, CASE WHEN pg_temp.h(c.id, 6) < 700 THEN 4 ELSE 3 END) s
) steps
WHERE c.id BETWEEN %(lo)s::bigint AND %(hi)s::bigint
"""

ORDERS = """
INSERT INTO orders (store_id, platform_order_id, cart_id, checkout_token, email, name, currency, total, placed_at,
                    attribution, created_at)
SELECT store_id, 'o' || id, id, checkout_token, email, '#' || (1000 + id), currency, total, completed_at, status, completed_at
FROM carts WHERE status IN ('recovered', 'completed') AND id BETWEEN %(lo)s AND %(hi)s
"""

CHUNK = 500_000
LOADED = ("carts", "experiment_assignments", "recovery_messages", "orders")


def _drop_indexes(conn: psycopg.Connection) -> list[str]:
    """Drop the loaded tables' unique constraints and secondary indexes (primary keys stay); returns the
    statements that make them again, exactly as the migrations defined them."""
    tables = list(LOADED)
    uniques = conn.execute(
        "SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'u' AND conrelid::regclass::text = ANY(%s)", (tables,)
    ).fetchall()
    indexes = conn.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = ANY(%s) AND i.schemaname = 'public' "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)", (tables,)
    ).fetchall()
    for name, table, _ in uniques:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    return [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for name, table, definition in uniques] + [
        definition for _, definition in indexes
    ]


def sqlalchemy_url(admin_url: str, database: str) -> str:
    base = admin_url.rsplit("/", 1)[0].split("://", 1)[1]
    return f"postgresql+psycopg://{base}/{database}"


def exists(admin_url: str, database: str) -> bool:
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is not None


def seed(admin_url: str = DEFAULT_ADMIN, database: str = DEFAULT_DATABASE, carts: int = 5_000_000, stores: int = 2_000,
         log: Any = print) -> dict[str, Any]:  # fmt: skip
    """Create `database` (it must not exist), migrate it, load it, count its figures; returns sizes and times."""
    from recovery.measure import figures_bulk
    from recovery.storage.db import make_engine, make_sessionmaker
    from recovery.storage.schema import upgrade

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    url = sqlalchemy_url(admin_url, database)
    upgrade(url)
    started = time.perf_counter()
    times: dict[str, float] = {}
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no triggers, no FK checks: one bulk load
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SET work_mem = '128MB'")
        conn.execute(HASH)
        zones = ", ".join(f"'{z}'" for z in ZONES)
        conn.execute(STORES.format(zones=zones, nzones=len(ZONES)), {"stores": stores})
        rebuild = _drop_indexes(conn)  # built once after the load: far cheaper than row by row
        for name, statement in (("carts", CARTS), ("assignments", ASSIGNMENTS), ("messages", MESSAGES), ("orders", ORDERS)):
            t0 = time.perf_counter()
            for lo in range(1, carts + 1, CHUNK):
                hi = min(lo + CHUNK - 1, carts)
                conn.execute(statement, {"lo": lo, "hi": hi, "big": carts // 10, "stores": stores})
                log(f"  {name}: rows of carts {lo:,}–{hi:,} loaded ({time.perf_counter() - started:,.0f} s)")
            times[name] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for statement in rebuild:
            conn.execute(statement)
        times["indexes"] = time.perf_counter() - t0
        log(f"  indexes rebuilt ({time.perf_counter() - started:,.0f} s)")
        for table in ("stores", "carts", "experiment_assignments", "recovery_messages", "orders"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        t0 = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        times["vacuum analyze"] = time.perf_counter() - t0
    engine = make_engine(url)
    t0 = time.perf_counter()
    with make_sessionmaker(engine).begin() as session:
        rows = figures_bulk.rebuild_all(session)
    times["daily figures"] = time.perf_counter() - t0
    engine.dispose()
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE daily_figures")
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                  for t in ("stores", "carts", "recovery_messages", "orders", "experiment_assignments")}  # fmt: skip
    return {"database": database, "counts": counts, "daily_figure_rows": rows, "seconds": times,
            "total_seconds": time.perf_counter() - started}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN)
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--carts", type=int, default=5_000_000)
    parser.add_argument("--stores", type=int, default=2_000)
    result = seed(args.admin_url, args.database, args.carts, args.stores) if (args := parser.parse_args()) else None
    print(result)


if __name__ == "__main__":
    main()
