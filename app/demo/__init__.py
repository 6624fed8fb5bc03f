"""`cartresq demo`: a simulated store whose shoppers go through the real HTTP endpoints, signed like Shopify.

Time is simulated (issue 21 item 6): the process clock is moved (time-machine) in steps of five
simulated minutes, and at each step the demo fires the shoppers' due events, lets the intake
worker finish, runs one dispatcher pass, lets the send worker finish, and reads the outbox, so no
thread timing decides anything. Shoppers check out at local hours of their own time zones over a
simulated day; a shopper who completes checkout pays within minutes, inside the store's idle time,
so a completed checkout is never counted as abandoned. Each reaction is drawn from (seed, shopper,
step) at the simulated time the message is read, with the shopper-local hour. The same `--seed`
prints the same figures and message counts.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
import shutil

import httpx
from werkzeug.serving import make_server

from app.demo import flows, payloads
from app.demo.progress import Progress
from app.demo.shop import SECRET, Shop
from ml.simulator import ShopperModel
from recovery.measure.analytics import Summary, format_summary, summarize
from recovery.config.settings import Settings

__all__ = ["DemoError", "SECRET", "Shop", "run", "summary_json"]

SEQUENCE_HOURS = 80  # the default sequence's last step is at +72 h, plus the first-message window
ARRIVAL_HOURS = 24  # shoppers check out over the first simulated day
STEP = timedelta(minutes=5)
#: The simulated calendar (a Monday morning UTC): nothing the demo does reads the wall clock.
SIM_START = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
JOIN_MS = 60_000


class DemoError(Exception):
    """Something the operator can fix (a port in use): one line, no traceback."""


def run(
    carts: int = 300, seed: int = 7, port: int = 8000, serve: bool = True, var_dir: Path = Path("var/demo"),
    progress: Progress | None = None, model_dir: Path | None = None,
) -> Summary:
    import logging

    progress = progress or Progress()
    noisy = [logging.getLogger(name) for name in ("httpx", "werkzeug", "recovery", "dramatiq", "app")]
    levels = [logger.level for logger in noisy]
    for logger in noisy:
        logger.setLevel(logging.WARNING)  # the summary is the demo's output
    try:
        return _run(carts, seed, port, serve, var_dir, progress, model_dir)
    finally:
        for logger, level in zip(noisy, levels):
            logger.setLevel(level)  # as it was: a caller (a test run) keeps its logging


def _run(
    carts: int, seed: int, port: int, serve: bool, var_dir: Path, progress: Progress, model_dir: Path | None
) -> Summary:
    import time_machine
    from sqlalchemy import select

    from recovery.config.store_settings import effective
    from recovery.flows.report import flow_lines

    from app import create_app
    from app.cli_errors import plain_request_logs
    from app.dispatcher import run_once
    from app.runtime import build_runtime
    from recovery.storage import tables as t
    from recovery.storage.schema import upgrade

    # The port first, before minutes of work: the app is plugged in once it exists.
    mounted: dict[str, object] = {}

    def wsgi(environ, start_response):  # type: ignore[no-untyped-def]
        return mounted["app"](environ, start_response)  # type: ignore[operator]

    try:
        listener = socket.create_server(("127.0.0.1", port if serve else 0))
    except OSError as exc:
        raise DemoError(
            f"port {port} is not free ({exc.strerror}): pick another with --port P (make demo PORT=P), "
            "or run with --no-serve"
        ) from None
    with listener:  # werkzeug serves on a duplicate of this socket
        port = listener.getsockname()[1]
        server = make_server("127.0.0.1", port, wsgi, threaded=True, request_handler=plain_request_logs(),
                             fd=listener.fileno())
    progress.stage(f"port {port} reserved" if serve else f"private port {port} (--no-serve)")
    shutil.rmtree(var_dir, ignore_errors=True)
    model_path = _model_dir(seed, progress, model_dir or Path("var/model"))
    travel = time_machine.travel(SIM_START, tick=False)
    clock = travel.start()  # from here on every clock in this process reads simulated time
    try:
        settings = Settings.from_env({
            "CARTRESQ_VAR_DIR": str(var_dir),
            "CARTRESQ_TIME_SCALE": "1",  # real durations on a simulated clock
            "REDIS_URL": "",  # the in-process broker: its joins are what keeps the steps in order
            "SHOPIFY_API_SECRET": SECRET,
            "APP_URL": f"http://127.0.0.1:{port}",
            "CARTRESQ_MODEL_DIR": str(model_path),
            "CARTRESQ_ADMIN_TOKEN": os.environ.get("CARTRESQ_ADMIN_TOKEN") or secrets.token_urlsafe(24),
        })
        upgrade(settings.database_url)
        runtime = build_runtime(settings, seed=seed)
        with runtime.sessions.begin() as session:
            session.add(t.Store(platform="shopify", domain=payloads.SHOP, name="Demo Outfitters", settings={
                "postal_address": "1 Example Street, Springfield, EX 00000", "sender_name": "Demo Outfitters",
                **flows.STORE_SETTINGS,
            }, timezone="America/New_York", currency="USD", plan="free",
                experiment_salt=sha256(f"demo-salt:{seed}".encode()).hexdigest()[:32]))  # the holdout follows the seed
        runtime.start_embedded_worker(threads=4)
        mounted["app"] = create_app(runtime=runtime)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        progress.stage(f"{carts} simulated shoppers on {settings.app_url}, simulated clock from {SIM_START:%Y-%m-%d %H:%M} UTC")
        model = ShopperModel(seed)

        def sent(ids: list[int]) -> dict[int, str | None]:
            from sqlalchemy import select

            with runtime.sessions() as session:
                rows = select(t.RecoveryMessage.id, t.RecoveryMessage.flow).where(
                    t.RecoveryMessage.id.in_(ids), t.RecoveryMessage.status == "sent")
                return {row.id: row.flow for row in session.execute(rows)}

        with httpx.Client(base_url=settings.app_url, timeout=30) as client:
            shop = Shop(seed, client)
            for i in range(carts):
                shop.add(model.shopper(i), SIM_START)
            for at, topic, payload in flows.catalog_events(SIM_START):
                shop.send_at(at, topic, payload)
            end = SIM_START + timedelta(hours=ARRIVAL_HOURS + SEQUENCE_HOURS)
            with progress.bar("simulated hours", total=ARRIVAL_HOURS + SEQUENCE_HOURS) as advance:
                now, shown = SIM_START, 0
                while now <= end:
                    clock.move_to(now)
                    _step(runtime, shop, settings, sent, now, run_once)
                    now = _next_step(runtime, shop, now, end)
                    hours = min(int((now - SIM_START) / timedelta(hours=1)), ARRIVAL_HOURS + SEQUENCE_HOURS)
                    advance(hours - shown)
                    shown = hours
        with runtime.sessions() as session:
            summary = summarize(session)
            store = session.scalars(select(t.Store)).one()
            lines = flow_lines(session, store.id)
            holdout_percent = effective(store.settings or {})["holdout_percent"]
    finally:
        travel.stop()
    progress.result(format_summary(summary) + "\n" + flows.lines_text(lines, holdout_percent),
                    {**summary_json(summary, seed, carts), "flows": flows.lines_json(lines)})
    if serve:
        progress.stage(f"dashboard: {settings.app_url}/   (Ctrl-C to stop; later: make serve VAR={var_dir})")
        if not os.environ.get("CARTRESQ_ADMIN_TOKEN"):  # the operator's terminal only, never a log
            print(f"sign in: open {settings.app_url}/operator, any user name, password {settings.admin_token}")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    server.shutdown()
    runtime.close()
    return summary


def _step(runtime, shop: Shop, settings: Settings, sent, now: datetime, run_once) -> None:  # type: ignore[no-untyped-def]
    """One simulated instant: shoppers act, intake settles, one dispatcher pass, sends settle, reactions."""
    shop.fire_due(now)
    runtime.broker.join("intake", timeout=JOIN_MS)
    run_once(runtime)
    runtime.broker.join("send", timeout=JOIN_MS)
    while shop.read_outbox(settings.outbox_dir, settings, sent, now):  # continuously: whatever was sent now
        runtime.broker.join("intake", timeout=JOIN_MS)
    runtime.broker.join("intake", timeout=JOIN_MS)


def _next_step(runtime, shop: Shop, now: datetime, end: datetime) -> datetime:  # type: ignore[no-untyped-def]
    """The next STEP boundary at which anything can happen (idle stretches are skipped)."""
    from sqlalchemy import func, select

    from recovery.storage import tables as t

    with runtime.sessions() as session:
        due = session.scalar(select(func.min(t.RecoveryMessage.due_at)).where(t.RecoveryMessage.status == "planned"))
        idle = session.scalar(select(func.min(t.Cart.abandon_at)).where(t.Cart.status == "active"))
    candidates = [x for x in (shop.next_event(), due, idle) if x is not None]
    target = max(min(candidates, default=end + STEP), now + STEP)
    steps = -(-(target - SIM_START) // STEP)  # the first step boundary at or after target
    return SIM_START + steps * STEP


def summary_json(summary: Summary, seed: int, carts: int) -> dict[str, object]:
    """The summary for machines: every field of `Summary`, the lift, and what produced it."""
    data = asdict(summary)
    data["lift_points"] = round(summary.lift, 2)
    return {"seed": seed, "shoppers": carts, **json.loads(json.dumps(data, default=str))}


def _model_dir(seed: int, progress: Progress, model_dir: Path) -> Path:
    """Train the send-time model once (on simulated outcomes, and it says so) if none exists yet."""
    if not (model_dir / "send_time.onnx").exists():
        try:
            from ml.train import train
        except ImportError:
            progress.stage("scikit-learn is not installed (pip install 'cartresq[ml]'): fixed send times")
            return model_dir
        with progress.working(f"training the send-time model on simulated outcomes into {model_dir} (first run only)"):
            train(model_dir, n_samples=8000, seed=seed)
    else:
        progress.stage(f"send-time model from {model_dir}")
    return model_dir
