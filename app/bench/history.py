"""The `history` benchmark: does the loop slow down as history grows? 100 k vs 5 M carts in the database.

For each size, a scratch PostgreSQL database of its own is seeded in PostgreSQL itself (INSERT … SELECT
generate_series, then ANALYZE): `size` past carts (60 % abandoned, 30 % completed with an order, 10 %
recovered), their first messages (sent) and second messages (cancelled) for half of them, their holdout
assignments and the shoppers' send ledger. Then, on top of that history, the `pipeline` bench's run
(app/bench/pipeline.py: `fresh` new idle carts abandoned, scored with a fixed send time, claimed by
`dispatch.claim_due` and sent by 2 processes × 4 threads into a fake channel) measures

- claim time: mean milliseconds of one `claim_due` pass (up to 250 due rows) during that run, and
- pipeline throughput: carts/s from abandonment to a first message.

Target (issue 24): both within 20 % of the 100 k figures at 5 M.
"""

from __future__ import annotations

import time
from typing import Any

SIZES = (100_000, 5_000_000)
TARGET = 0.20

_TABLES = ("carts", "recovery_messages", "experiment_assignments", "orders", "shopper_sends")
_SEED = [
    """INSERT INTO carts (store_id, checkout_token, cart_token, email, first_name, locale, currency, subtotal, total,
        line_items, status, source, platform_updated_at, last_activity_at, abandon_at, abandoned_at,
        accepts_email, accepts_sms, created_at, updated_at, restore_url)
    SELECT :store, 'hist-' || g, 'hist-cart-' || g, 'past-' || g || '@example.com', 'Avelin', 'en-US', 'USD',
        36.00, 36.00, '[]'::jsonb,
        CASE WHEN g % 10 < 6 THEN 'abandoned' WHEN g % 10 < 9 THEN 'completed' ELSE 'recovered' END,
        'webhook', ts, ts, ts + interval '1 hour', ts + interval '1 hour', false, false, ts, ts,
        'https://bench.example.com/recover'
    FROM (SELECT g, now() - interval '400 days' + (g * interval '400 days') / :n AS ts
          FROM generate_series(1, :n) AS g) AS s""",
    """INSERT INTO recovery_messages (store_id, cart_id, step, channel, template, due_at, status, attempts,
        claimed_at, sent_at, created_at)
    SELECT store_id, id, 1, 'email', 'gentle_reminder', abandoned_at + interval '1 hour', 'sent', 1,
        abandoned_at + interval '1 hour', abandoned_at + interval '1 hour', abandoned_at
    FROM carts WHERE checkout_token LIKE 'hist-%'""",
    """INSERT INTO recovery_messages (store_id, cart_id, step, channel, template, due_at, status, attempts,
        reason, created_at)
    SELECT store_id, id, 2, 'email', 'value_proposition', abandoned_at + interval '1 day', 'cancelled', 0,
        'shopper ordered', abandoned_at
    FROM carts WHERE checkout_token LIKE 'hist-%' AND id % 2 = 0""",
    """INSERT INTO experiment_assignments (store_id, cart_id, experiment, variant, assigned_at)
    SELECT store_id, id, 'holdout', CASE WHEN id % 10 = 0 THEN 'holdout' ELSE 'treatment' END, abandoned_at
    FROM carts WHERE checkout_token LIKE 'hist-%'""",
    """INSERT INTO orders (store_id, platform_order_id, cart_id, checkout_token, email, currency, total, placed_at,
        attribution, created_at)
    SELECT store_id, 'hist-' || id, id, checkout_token, email, 'USD', 36.00, abandoned_at + interval '2 hours',
        CASE WHEN status = 'recovered' THEN 'recovered' ELSE 'completed' END, abandoned_at + interval '2 hours'
    FROM carts WHERE checkout_token LIKE 'hist-%' AND status IN ('completed', 'recovered')""",
    """INSERT INTO shopper_sends (store_id, shopper_key, last_sent_at)
    SELECT store_id, md5('email:' || email), abandoned_at + interval '1 hour'
    FROM carts WHERE checkout_token LIKE 'hist-%'""",
]


def seed_history(url: str, size: int) -> dict[str, Any]:
    """Fill the scratch database at `url` with `size` past carts and theirs; returns row counts and seconds."""
    from sqlalchemy import select, text

    from recovery.storage import tables as t
    from recovery.storage.db import make_engine

    started = time.perf_counter()
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            # A bulk load: no per-row foreign-key triggers (the rows are consistent by construction; needs the
            # superuser the scratch database is made by), and plain indexes built once at the end.
            conn.execute(text("SET LOCAL synchronous_commit = off"))
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
            indexes = conn.execute(text(
                "SELECT indexname, indexdef FROM pg_indexes i WHERE schemaname = 'public' AND tablename = ANY(:tables)"
                " AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conname = i.indexname)"
            ), {"tables": list(_TABLES)}).all()
            for name, _definition in indexes:
                conn.execute(text(f'DROP INDEX "{name}"'))
            store = conn.scalar(select(t.Store.id))
            for statement in _SEED:
                conn.execute(text(statement), {"store": store, "n": size})
            for _name, definition in indexes:
                conn.execute(text(definition))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))  # as autovacuum would have, long before history got this big
            counts = {table: conn.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608 - fixed names
                      for table in _TABLES}
            size_mb = conn.scalar(text("SELECT pg_database_size(current_database())")) / 2**20
    finally:
        engine.dispose()
    return {"rows": counts, "database_mb": round(size_mb), "seed_s": round(time.perf_counter() - started, 1)}


def run_history(sizes: tuple[int, ...] = SIZES, fresh: int = 3000, rounds: int = 3, *,
                pg_url: str | None = None) -> dict[str, Any]:
    """A scratch database per size, each seeded with its history; then the pipeline on top of each, the
    sizes taking turns `rounds` times (a shared machine's speed drifts: each size sees the same spells),
    `fresh` new carts per turn. Figures are the medians of the turns."""
    import os
    import statistics
    from contextlib import ExitStack

    from app.bench.ingest_env import DEFAULT_PG, scratch_database
    from app.bench.ingest import SHOP
    from app.bench.pipeline import run_on

    pg_url = pg_url or os.environ.get("CARTRESQ_BENCH_PG") or DEFAULT_PG
    with ExitStack() as stack:
        urls = [stack.enter_context(scratch_database(pg_url, SHOP)) for _ in sizes]
        seeded = [seed_history(url, size) for url, size in zip(urls, sizes, strict=True)]
        turns: list[list[dict[str, Any]]] = [[] for _ in sizes]
        for turn in range(rounds):
            for k, url in enumerate(urls):
                turns[k].append(run_on(url, fresh, tag=f"t{turn}-"))
    results = []
    for size, seed, runs in zip(sizes, seeded, turns, strict=True):
        results.append({
            "size": size, **seed, "turns": runs,
            "carts_per_s": statistics.median(r["carts_per_s"] for r in runs),
            "claim_ms": statistics.median(r["claim_ms"] for r in runs),
            "claim_p90_ms": statistics.median(r["claim_p90_ms"] for r in runs),
        })  # fmt: skip
    base, top = results[0], results[-1]
    return {
        "bench": "history", "fresh_carts": fresh, "rounds": rounds, "runs": results,
        "claim_ratio": top["claim_ms"] / base["claim_ms"] if base["claim_ms"] else 0.0,
        "throughput_ratio": top["carts_per_s"] / base["carts_per_s"] if base["carts_per_s"] else 0.0,
        "target": TARGET,
    }  # fmt: skip


def format_history(d: dict[str, Any]) -> str:
    lines = [f"history: {d['fresh_carts']} new carts × {d['rounds']} turns (medians) through the pipeline with N past carts (and their messages, "
             "assignments, orders, send ledger) in PostgreSQL"]
    for r in d["runs"]:
        lines.append(f"  N = {r['size']:>9,}  ({r['database_mb']:,} MB, seeded in {r['seed_s']:.0f} s)  claim pass "
                     f"{r['claim_ms']:6.1f} ms (p90 {r['claim_p90_ms']:.1f})  pipeline {r['carts_per_s']:6.0f} carts/s")
    claim_ok = d["claim_ratio"] <= 1 + d["target"]
    thr_ok = d["throughput_ratio"] >= 1 - d["target"]
    lines.append(f"  largest vs smallest: claim time ×{d['claim_ratio']:.2f} ({'PASS' if claim_ok else 'FAIL'}), "
                 f"throughput ×{d['throughput_ratio']:.2f} ({'PASS' if thr_ok else 'FAIL'}); target within "
                 f"{d['target']:.0%}")
    return "\n".join(lines)
