"""`cartresq demo`: a simulated store whose shoppers go through the real HTTP endpoints, signed like Shopify.

The real dispatcher and worker run in-process with every policy duration scaled down, so three days
of recovery sequences pass in well under a minute.

Reproducibility: the seed fixes the shoppers (ml/simulator.py), the order they arrive in (one at a time,
so cart ids and the holdout draw follow the seed), and how each reacts to each message (a generator per
shopper and step, fed the step's nominal time on a fixed simulated calendar, not the wall clock). What
stays real is thread timing: an unprompted order and a reminder due within a few simulated minutes of
each other can land in either order, which can move a figure by a cart between runs.
"""

from __future__ import annotations

import heapq
import json
import os
import re
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import numpy as np
from werkzeug.serving import make_server

from app.demo import payloads
from app.demo.progress import Progress
from ml.features import candidate_matrix
from ml.simulator import ShopperModel, SimShopper
from recovery.measure.analytics import Summary, format_summary, summarize
from recovery.config.settings import Settings

SECRET = "demo-shopify-client-secret"
TIME_SCALE = 14_400.0  # one simulated hour = 0.25 s
SEQUENCE_HOURS = 80  # the default sequence's last step is at +72 h, plus the first-message window
#: The simulated calendar shoppers live on (a Monday evening): their reactions never read the wall clock.
SIM_START = datetime(2026, 3, 2, 19, 0, tzinfo=UTC)


class DemoError(Exception):
    """Something the operator can fix (a port in use): one line, no traceback."""


def _nominal_hours(step: int) -> float:
    """When step N of the default sequence goes out, in hours after abandonment (the first: about 1 h)."""
    from recovery.sequence.plan import default_sequence

    steps = default_sequence()
    delay = steps[min(step, len(steps)) - 1].delay
    return 1.0 if delay is None else delay / 3600


@dataclass
class Shop:
    """The simulated storefront: who is shopping, who already bought, what is due next."""

    seed: int
    client: httpx.Client
    shoppers: dict[str, SimShopper] = field(default_factory=dict)
    unprompted: list[tuple[float, int]] = field(default_factory=list)  # (hours after the start, shopper)
    bought: set[int] = field(default_factory=set)
    due: list[tuple[float, int]] = field(default_factory=list)  # (real time, shopper) unprompted orders
    seen_files: set[str] = field(default_factory=set)
    orders: int = 1000
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, topic: str, payload: dict) -> None:  # type: ignore[type-arg]
        import base64
        import hashlib
        import hmac
        import uuid

        body = json.dumps(payload).encode()
        signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": payloads.SHOP,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "X-Shopify-Hmac-Sha256": signature,
        }
        self.client.post("/webhooks/shopify", content=body, headers=headers).raise_for_status()

    def arrive(self, shopper: SimShopper) -> None:
        now = datetime.now(UTC)
        self.shoppers[shopper.email] = shopper
        self.post("checkouts/create", payloads.checkout(self.seed, shopper, now, with_contact=True))
        if not shopper.abandons:
            self.buy(shopper)
        elif shopper.buys_unprompted_after_hours is not None:
            self.unprompted.append((shopper.buys_unprompted_after_hours, shopper.index))

    def start_clock(self) -> None:
        """Simulated time starts once every shopper has checked out: unprompted orders count from here."""
        start = time.monotonic()
        with self.lock:
            for hours, index in self.unprompted:
                heapq.heappush(self.due, (start + hours * 3600 / TIME_SCALE, index))

    def buy(self, shopper: SimShopper) -> None:
        with self.lock:
            if shopper.index in self.bought:
                return
            self.bought.add(shopper.index)
            self.orders += 1
            number = self.orders
        self.post("orders/create", payloads.order(self.seed, shopper, datetime.now(UTC), number))

    def fire_due(self, by_index: dict[int, SimShopper]) -> None:
        while self.due and self.due[0][0] <= time.monotonic():
            _, index = heapq.heappop(self.due)
            self.buy(by_index[index])

    def read_outbox(self, outbox: Path, settings: Settings, sent: Callable[[list[int]], set[int]]) -> None:
        """React to each new message as the simulated shopper would: open, click, buy.

        Only once its row says `sent`: the outbox file is written just before that commit, and an order
        landing in between would not be attributed to the message (a race, not a shopper's choice)."""
        fresh = [p for p in sorted(outbox.glob("*/*")) if p.name not in self.seen_files and p.suffix in {".eml", ".json"}]
        ids = {path: int(match.group(1)) for path in fresh if (match := re.match(r"(\d+)-step", path.name))}
        committed = sent(list(ids.values())) if ids else set()
        for path in fresh:
            if path in ids and ids[path] not in committed:
                continue  # next pass
            self.seen_files.add(path.name)
            if path.suffix == ".eml":
                message = message_from_bytes(path.read_bytes(), policy=policy.default)
                shopper = self.shoppers.get(str(message["To"]))
                html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
            else:
                data = json.loads(path.read_text())
                shopper = next((s for s in self.shoppers.values() if s.phone == data["to"]), None)
                html = data["body"]
            if shopper is None or shopper.index in self.bought:
                continue
            step = int(re.search(r"-step(\d+)", path.stem).group(1)) if "-step" in path.stem else 1  # type: ignore[union-attr]
            self.respond(shopper, step, html, settings)

    def respond(self, shopper: SimShopper, step: int, html: str, settings: Settings) -> None:
        """The shopper's reaction to step N: drawn from (seed, shopper, step) at the step's nominal time."""
        rng = np.random.default_rng([self.seed, 0xD3E0, shopper.index, step])
        hours_since = _nominal_hours(step)
        local = SIM_START + timedelta(hours=hours_since)
        row = candidate_matrix(shopper.features(local.hour, local.weekday()), [hours_since])[0]
        response = shopper.respond(row, rng)
        base = re.escape(settings.app_url)
        pixel = re.search(base + r"/o/[\w.\-]+", html)
        restore = re.search(base + r"/r/[\w.\-]+", html)
        if response.opened and pixel:
            self.client.get(pixel.group(0).removeprefix(settings.app_url))
        if response.clicked and restore:
            self.client.get(restore.group(0).removeprefix(settings.app_url))  # a 302 to the store; not followed
        if response.bought:
            self.buy(shopper)


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
    from app import create_app
    from app.cli_errors import plain_request_logs
    from app.dispatcher import start_in_thread
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
    settings = Settings.from_env({
        "CARTRESQ_VAR_DIR": str(var_dir),
        "CARTRESQ_TIME_SCALE": str(TIME_SCALE),
        "SHOPIFY_API_SECRET": SECRET,
        "APP_URL": f"http://127.0.0.1:{port}",
        "CARTRESQ_MODEL_DIR": str(_model_dir(seed, progress, model_dir or Path("var/model"))),
        "CARTRESQ_ADMIN_TOKEN": os.environ.get("CARTRESQ_ADMIN_TOKEN") or secrets.token_urlsafe(24),
    })
    upgrade(settings.database_url)
    runtime = build_runtime(settings, seed=seed)
    with runtime.sessions.begin() as session:
        session.add(t.Store(platform="shopify", domain=payloads.SHOP, name="Demo Outfitters", settings={
            "postal_address": "1 Example Street, Springfield, EX 00000", "sender_name": "Demo Outfitters",
        }, timezone="America/New_York", currency="USD", plan="free"))
    runtime.start_embedded_worker(threads=4)
    mounted["app"] = create_app(runtime=runtime)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    progress.stage(f"{carts} simulated shoppers on {settings.app_url} (1 simulated hour = {3600 / TIME_SCALE:.2f} s)")
    model = ShopperModel(seed)
    people = [model.shopper(i) for i in range(carts)]
    by_index = {p.index: p for p in people}
    def sent(ids: list[int]) -> set[int]:
        from sqlalchemy import select

        with runtime.sessions() as session:
            rows = select(t.RecoveryMessage.id).where(t.RecoveryMessage.id.in_(ids), t.RecoveryMessage.status == "sent")
            return set(session.scalars(rows))

    with httpx.Client(base_url=settings.app_url, timeout=10) as client:
        shop = Shop(seed, client)
        # Every shopper checks out (and those who do not abandon, buy) before the dispatcher starts, one
        # at a time in the seed's order: no 0.25 s abandonment delay can overtake an order still queued on
        # a busy machine, and the holdout is drawn over the carts in the seed's order.
        with progress.bar("shoppers checking out", total=len(people)) as advance:
            for person in people:
                shop.arrive(person)
                advance(1)
            runtime.broker.join("intake", timeout=60_000)
        start_in_thread(runtime, interval=0.2)
        shop.start_clock()
        start = time.monotonic()
        end = start + SEQUENCE_HOURS * 3600 / TIME_SCALE
        with progress.bar("recovery sequences (simulated hours)", total=SEQUENCE_HOURS) as advance:
            shown = 0
            while time.monotonic() < end:
                shop.fire_due(by_index)
                shop.read_outbox(settings.outbox_dir, settings, sent)
                hours = min(int((time.monotonic() - start) * TIME_SCALE / 3600), SEQUENCE_HOURS)
                advance(hours - shown)
                shown = hours
                time.sleep(0.05)
            advance(SEQUENCE_HOURS - shown)
        progress.stage("letting the last messages and orders settle")
        runtime.broker.join("intake", timeout=30_000)
        runtime.broker.join("send", timeout=30_000)
        shop.read_outbox(settings.outbox_dir, settings, sent)
        time.sleep(0.5)
        runtime.broker.join("intake", timeout=30_000)
    with runtime.sessions() as session:
        summary = summarize(session)
    progress.result(format_summary(summary), summary_json(summary, seed, carts))
    if serve:
        progress.stage(f"dashboard: {settings.app_url}/   (Ctrl-C to stop; later: make serve VAR={var_dir})")
        if not os.environ.get("CARTRESQ_ADMIN_TOKEN"):  # the operator's terminal only, never a log
            print(f"dashboard sign-in: any user name, password {settings.admin_token}")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    server.shutdown()
    runtime.close()
    return summary


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
