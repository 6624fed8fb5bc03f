"""`cartresq bench dashboard`: the merchant app's Performance and Carts pages at scale, p50/p95 per page.

Runs against its own PostgreSQL database (CARTRESQ_BENCH_DASHBOARD_DB, default cartresq_bench_dashboard),
seeded by app/bench/dashboard_seed.py when it does not exist yet (CARTRESQ_BENCH_DASHBOARD_CARTS, default
5,000,000 carts; CARTRESQ_BENCH_DASHBOARD_STORES, default 2,000). Each page is requested through the whole
Flask app (operator token, store scoping, queries, templates) for the largest store and a typical one;
CARTRESQ_BENCH_DASHBOARD_REPEATS timed requests each (default 40) after 3 untimed.

Baselines, measured in the same run: the Overview page (the frame every page pays for), the 30-day funnel counted live from the base tables (what the page
would cost without the daily figures), and the deep Carts page fetched with OFFSET instead of a keyset.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from app.bench.dashboard_seed import DEFAULT_ADMIN, DEFAULT_DATABASE, exists, seed, sqlalchemy_url
from app.bench.loadgen import percentile

TARGET_P95_MS = 300.0
TOKEN = "bench-operator-token-0123456789abcdef"


def _settings(url: str):  # type: ignore[no-untyped-def]
    import tempfile
    from pathlib import Path

    from recovery.config.settings import Settings

    scratch = Path(tempfile.mkdtemp(prefix="cartresq-bench-dashboard-"))
    return Settings(database_url=url, secret_key="bench-secret-key", admin_token=TOKEN, outbox_dir=scratch / "outbox",
                    var_dir=scratch / "var", model_dir=scratch / "model")  # fmt: skip


def _pick(session, store_id: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A store's domain and time zone, an email, an order name, a cart, and a cursor half way down its list."""
    from sqlalchemy import select

    from app.web.merchant.carts import encode_cursor
    from recovery.storage import tables as t

    store = session.get(t.Store, store_id)
    total = session.scalar(select(t.Cart.id).where(t.Cart.store_id == store_id).order_by(t.Cart.id.desc()).limit(1))
    middle = session.execute(
        select(t.Cart.last_activity_at, t.Cart.id).where(t.Cart.store_id == store_id)
        .order_by(t.Cart.last_activity_at.desc(), t.Cart.id.desc()).offset(_count(session, store_id) // 2).limit(1)
    ).one()  # fmt: skip
    order = session.execute(select(t.Order.name, t.Order.cart_id).where(t.Order.store_id == store_id).limit(1)).one()
    email = session.scalar(select(t.Cart.email).where(t.Cart.id == total))
    return {"domain": store.domain, "timezone": store.timezone, "email_prefix": email.split("@")[0][:-1],
            "order": order.name, "cart": order.cart_id, "cursor": encode_cursor(*middle),
            "carts": _count(session, store_id), "middle_offset": _count(session, store_id) // 2}  # fmt: skip


def _count(session, store_id: int) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from recovery.storage import tables as t

    return int(session.scalar(select(func.count()).select_from(t.Cart).where(t.Cart.store_id == store_id)) or 0)


def pages(p: dict[str, Any]) -> dict[str, str]:
    from urllib.parse import quote

    today = datetime.now(UTC).date()
    day = today - timedelta(days=180)
    s = f"store={p['domain']}"
    return {
        "overview (baseline)": f"/app/?{s}",
        "performance (30 days)": f"/app/performance?{s}",
        "performance (365 days)": f"/app/performance?{s}&from={today - timedelta(days=364)}&to={today}",
        "carts, first page": f"/app/carts?{s}",
        "carts, page half way down": f"/app/carts?{s}&after={p['cursor']}",
        "carts, status=recovered": f"/app/carts?{s}&status=recovered",
        "carts, sent by sms": f"/app/carts?{s}&channel=sms",
        "carts, one day": f"/app/carts?{s}&from={day}&to={day}",
        "carts, search email prefix": f"/app/carts?{s}&q={quote(p['email_prefix'])}",
        "carts, search order name": f"/app/carts?{s}&q={quote(p['order'])}",
        "cart page": f"/app/carts/{p['cart']}?{s}",
    }


class _DbClock:
    """Wall time spent inside the engine's statements (PostgreSQL's work and the wait for it)."""

    def __init__(self, engine) -> None:  # type: ignore[no-untyped-def]
        from sqlalchemy import event

        self.total = 0.0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, *_args) -> None:  # type: ignore[no-untyped-def]
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn, *_args) -> None:  # type: ignore[no-untyped-def]
        self.total += time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())


def _time_request(client, path: str, db: _DbClock, repeats: int, warmup: int = 3) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """p50/p95 of the wall time, of this process's CPU time and of the time in SQL, per request."""
    for _ in range(warmup):
        client.get(path).close()
    wall, cpu, sql = [], [], []
    for _ in range(repeats):
        db.total, c0, t0 = 0.0, time.process_time(), time.perf_counter()
        client.get(path).close()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        sql.append(db.total * 1000)
    wall, cpu, sql = sorted(wall), sorted(cpu), sorted(sql)
    return {"p50_ms": percentile(wall, 50), "p95_ms": percentile(wall, 95), "cpu_p50_ms": percentile(cpu, 50),
            "cpu_p95_ms": percentile(cpu, 95), "sql_p50_ms": percentile(sql, 50), "sql_p95_ms": percentile(sql, 95)}  # fmt: skip


def _time(fn, repeats: int, warmup: int = 3) -> list[float]:  # type: ignore[no-untyped-def]
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return sorted(out)


def run_dashboard(database: str | None = None, admin_url: str | None = None, repeats: int | None = None,
                  carts: int | None = None, stores: int | None = None) -> dict[str, Any]:  # fmt: skip
    from sqlalchemy import select, text

    from app import create_app
    from app.runtime import build_runtime
    from recovery.measure import figures
    from recovery.storage import tables as t
    from recovery.storage.schema import upgrade

    env = os.environ
    database = database or env.get("CARTRESQ_BENCH_DASHBOARD_DB") or DEFAULT_DATABASE
    admin_url = admin_url or env.get("CARTRESQ_BENCH_PG") or DEFAULT_ADMIN
    repeats = repeats or int(env.get("CARTRESQ_BENCH_DASHBOARD_REPEATS") or 40)
    seeded = None
    if not exists(admin_url, database):
        seeded = seed(admin_url, database, carts or int(env.get("CARTRESQ_BENCH_DASHBOARD_CARTS") or 5_000_000),
                      stores or int(env.get("CARTRESQ_BENCH_DASHBOARD_STORES") or 2_000), log=lambda *_: None)  # fmt: skip
    url = sqlalchemy_url(admin_url, database)
    upgrade(url)
    runtime = build_runtime(_settings(url))
    try:
        app = create_app(runtime=runtime)
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
        db = _DbClock(runtime.engine)
        load = os.getloadavg()[0]
        with runtime.sessions() as session:
            sizes = {name: session.scalar(text(f"SELECT reltuples::bigint FROM pg_class WHERE relname = '{name}'"))
                     for name in ("stores", "carts", "recovery_messages", "orders")}  # fmt: skip
            biggest = session.execute(select(t.Cart.store_id).order_by(t.Cart.id).limit(1)).scalar_one()
            typical = session.execute(select(t.Cart.store_id).order_by(t.Cart.id.desc()).limit(1)).scalar_one()
            picked = {"largest store": _pick(session, biggest), "typical store": _pick(session, typical)}
        results: list[dict[str, Any]] = []
        for which, p in picked.items():
            for page, path in pages(p).items():
                response = client.get(path)
                if response.status_code != 200:
                    raise RuntimeError(f"{page}: HTTP {response.status_code} for {path}")
                results.append({"store": which, "carts": p["carts"], "page": page, **_time_request(client, path, db, repeats)})
        big = picked["largest store"]
        tz = figures.zone(big["timezone"])
        today = datetime.now(UTC).astimezone(tz).date()
        days = [today - timedelta(days=n) for n in range(30)]
        with runtime.sessions() as session:
            store_id = biggest
            live = _time(lambda: figures.count_directly(session, store_id, days, tz), max(3, repeats // 8), warmup=1)
            offset = _time(lambda: session.execute(
                select(t.Cart.id).where(t.Cart.store_id == store_id)
                .order_by(t.Cart.last_activity_at.desc(), t.Cart.id.desc()).offset(big["middle_offset"]).limit(51)).all(),
                max(3, repeats // 8), warmup=1)  # fmt: skip
        baselines = {"funnel counted live (30 days, largest store)": {"p50_ms": percentile(live, 50), "p95_ms": percentile(live, 95)},
                     "deep page by OFFSET (largest store, query only)": {"p50_ms": percentile(offset, 50), "p95_ms": percentile(offset, 95)}}  # fmt: skip
    finally:
        runtime.close()
    return {"database": database, "sizes": sizes, "seeded": seeded, "repeats": repeats, "pages": results,
            "load_average": [load, os.getloadavg()[0]], "cpus": os.cpu_count(),
            "baselines": baselines, "target_p95_ms": TARGET_P95_MS}  # fmt: skip


def format_dashboard(r: dict[str, Any]) -> str:
    s = r["sizes"]
    lines = [
        f"dashboard: database {r['database']} ({s['stores']:,} stores, {s['carts']:,} carts, {s['recovery_messages']:,} messages,"
        f" {s['orders']:,} orders; estimated row counts), {r['repeats']} timed requests per page through the Flask app",
        f"machine: {r['cpus']} CPUs, load average {r['load_average'][0]:.1f} at the start, {r['load_average'][1]:.1f} at the end"
        " (wall times include waiting for a CPU; 'cpu' is this process's own CPU time, 'sql' the time in statements)",
        f"{'store':<15} {'carts':>9}  {'page':<28} {'p50 ms':>8} {'p95 ms':>8} {'cpu p50':>8} {'cpu p95':>8} {'sql p50':>8} {'sql p95':>8}",
    ]
    worst = 0.0
    own = max(row["cpu_p95_ms"] + row["sql_p95_ms"] for row in r["pages"])
    for row in r["pages"]:
        worst = max(worst, row["p95_ms"])
        lines.append(f"{row['store']:<15} {row['carts']:>9,}  {row['page']:<28} {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f}"
                     f" {row['cpu_p50_ms']:>8.1f} {row['cpu_p95_ms']:>8.1f} {row['sql_p50_ms']:>8.1f} {row['sql_p95_ms']:>8.1f}")
    perf = next(x for x in r["pages"] if x["page"] == "performance (30 days)")
    deep = next(x for x in r["pages"] if x["page"] == "carts, page half way down")
    live, offset = r["baselines"]["funnel counted live (30 days, largest store)"], r["baselines"]["deep page by OFFSET (largest store, query only)"]
    lines += [
        "baseline: overview = the merchant app's frame alone (operator token, the caller's store list, layout; no"
        " figures): what every page pays before its own work",
        f"baseline: 30-day funnel counted live from the base tables p50 {live['p50_ms']:.1f} ms "
        f"({live['p50_ms'] / max(perf['p50_ms'], 1e-9):.0f}x the whole Performance page from daily figures)",
        f"baseline: the same deep Carts page by OFFSET p50 {offset['p50_ms']:.1f} ms (query only; the keyset page, "
        f"whole request: {deep['p50_ms']:.1f} ms)",
        f"worst p95 {worst:.1f} ms; target p95 <= {r['target_p95_ms']:.0f} ms: {'met' if worst <= r['target_p95_ms'] else 'NOT met'}",
        f"worst p95 of the pages' own work (cpu p95 + sql p95, an idle machine's request time at most): {own:.1f} ms",
    ]
    return "\n".join(lines)
