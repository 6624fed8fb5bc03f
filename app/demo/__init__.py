"""`cartresq demo`: a simulated store whose shoppers go through the real HTTP endpoints, signed like Shopify.

The real dispatcher and worker run in-process with every policy duration scaled down, so three days
of recovery sequences pass in well under a minute.
"""

from __future__ import annotations

import heapq
import json
import os
import re
import secrets
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import numpy as np
from werkzeug.serving import make_server

from app.demo import payloads
from ml.features import candidate_matrix
from ml.simulator import ShopperModel, SimShopper
from recovery.analytics import Summary, format_summary, summarize
from recovery.settings import Settings

SECRET = "demo-shopify-client-secret"
TIME_SCALE = 14_400.0  # one simulated hour = 0.25 s
SEQUENCE_HOURS = 80  # the default sequence's last step is at +72 h, plus the first-message window


@dataclass
class Shop:
    """The simulated storefront: who is shopping, who already bought, what is due next."""

    seed: int
    client: httpx.Client
    shoppers: dict[str, SimShopper] = field(default_factory=dict)
    left_at: dict[int, float] = field(default_factory=dict)  # shopper index → real time of last activity
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
        self.left_at[shopper.index] = time.monotonic()
        if not shopper.abandons:
            self.buy(shopper)
        elif shopper.buys_unprompted_after_hours is not None:
            at = time.monotonic() + shopper.buys_unprompted_after_hours * 3600 / TIME_SCALE
            with self.lock:
                heapq.heappush(self.due, (at, shopper.index))

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

    def read_outbox(self, outbox: Path, settings: Settings, rng: np.random.Generator) -> None:
        """React to each new message as the simulated shopper would: open, click, buy."""
        for path in sorted(outbox.glob("*/*")):
            if path.name in self.seen_files or path.suffix not in {".eml", ".json"}:
                continue
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
            self.respond(shopper, html, settings, rng)

    def respond(self, shopper: SimShopper, html: str, settings: Settings, rng: np.random.Generator) -> None:
        hours_since = (time.monotonic() - self.left_at[shopper.index]) * TIME_SCALE / 3600
        local = datetime.now(UTC)
        row = candidate_matrix(shopper.features(local.hour, local.weekday()), [max(hours_since - 1, 0.25)])[0]
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


def run(carts: int = 300, seed: int = 7, port: int = 8000, serve: bool = True, var_dir: Path = Path("var/demo")) -> Summary:
    from app import create_app
    from app.logs import RedactingHandler
    from app.dispatcher import start_in_thread
    from app.runtime import build_runtime
    from recovery import tables as t
    from recovery.schema import upgrade

    import logging

    for noisy in ("httpx", "werkzeug", "recovery", "dramatiq", "app"):
        logging.getLogger(noisy).setLevel(logging.WARNING)  # the summary is the demo's output
    shutil.rmtree(var_dir, ignore_errors=True)
    settings = Settings.from_env({
        "CARTRESQ_VAR_DIR": str(var_dir),
        "CARTRESQ_TIME_SCALE": str(TIME_SCALE),
        "SHOPIFY_API_SECRET": SECRET,
        "APP_URL": f"http://127.0.0.1:{port}",
        "CARTRESQ_MODEL_DIR": str(_model_dir(seed)),
        "CARTRESQ_ADMIN_TOKEN": os.environ.get("CARTRESQ_ADMIN_TOKEN") or secrets.token_urlsafe(24),
    })
    upgrade(settings.database_url)
    runtime = build_runtime(settings, seed=seed)
    with runtime.sessions.begin() as session:
        session.add(t.Store(platform="shopify", domain=payloads.SHOP, name="Demo Outfitters", settings={
            "postal_address": "1 Example Street, Springfield, EX 00000", "sender_name": "Demo Outfitters",
        }, timezone="America/New_York", currency="USD", plan="free"))
    runtime.start_embedded_worker(threads=4)
    start_in_thread(runtime, interval=0.2)
    server = make_server("127.0.0.1", port, create_app(runtime=runtime), threaded=True, request_handler=RedactingHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"demo: {carts} simulated shoppers on {settings.app_url} (1 simulated hour = {3600 / TIME_SCALE:.2f} s)")
    model = ShopperModel(seed)
    people = [model.shopper(i) for i in range(carts)]
    by_index = {p.index: p for p in people}
    rng = np.random.default_rng([seed, 0xD3E0])
    with httpx.Client(base_url=settings.app_url, timeout=10) as client:
        shop = Shop(seed, client)
        # Shoppers arrive in waves of eight, side by side, like real traffic.
        with ThreadPoolExecutor(max_workers=8) as pool:
            for wave in range(0, len(people), 8):
                list(pool.map(shop.arrive, people[wave : wave + 8]))
                shop.read_outbox(settings.outbox_dir, settings, rng)
        end = time.monotonic() + SEQUENCE_HOURS * 3600 / TIME_SCALE
        while time.monotonic() < end:
            shop.fire_due(by_index)
            shop.read_outbox(settings.outbox_dir, settings, rng)
            time.sleep(0.05)
        runtime.broker.join("intake", timeout=30_000)
        runtime.broker.join("send", timeout=30_000)
        shop.read_outbox(settings.outbox_dir, settings, rng)
        time.sleep(0.5)
        runtime.broker.join("intake", timeout=30_000)
    with runtime.sessions() as session:
        summary = summarize(session)
    print(format_summary(summary))
    if serve:
        print(f"dashboard: {settings.app_url}/   (Ctrl-C to stop)")
        if not os.environ.get("CARTRESQ_ADMIN_TOKEN"):  # the operator's terminal only, never a log
            print(f"dashboard sign-in: any user name, password {settings.admin_token}")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    server.shutdown()
    runtime.close()
    return summary


def _model_dir(seed: int) -> Path:
    """Train the send-time model once (on simulated outcomes, and it says so) if none exists yet."""
    model_dir = Path("var/model")
    if not (model_dir / "send_time.onnx").exists():
        try:
            from ml.train import train
        except ImportError:
            print("demo: scikit-learn is not installed (pip install 'cartresq[ml]'): fixed send times")
            return model_dir
        print("demo: training the send-time model on simulated outcomes (first run only)...")
        train(model_dir, n_samples=8000, seed=seed)
    return model_dir
