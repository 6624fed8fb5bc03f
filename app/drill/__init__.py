"""`cartresq drill`: the production topology on private PostgreSQL and Redis instances, with faults.

Shoppers leave checkouts through the real webhook endpoint (signed as Shopify signs), time runs 3600x
faster (an abandonment delay of 1 h passes in 1 s), half of them pay while their reminders come due
(orders racing sends), and meanwhile: kill -9 of a web worker, the web master, a worker child and the
dispatcher, a Redis restart, PostgreSQL restarts (fast, then immediate) and poison payloads. Emails go to
a local SendGrid stand-in that records each hand-over. Then it waits for the work to settle and prints:
acked, lost, duplicated, sent after an acknowledged purchase, dead letters, deadlocks, recovery time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from app.demo import payloads

SECRET = "drill-shopify-secret"
SCALE = 3600
POISON: dict[str, dict[str, Any]] = {
    "token-300": {"token": "t" * 300}, "email-400": {"email": "e" * 388 + "@example.com"},
    "phone-42": {"phone": "+" + "4" * 42}, "total-1e400": {"total_price": "1e400"},
    "date-9999": {"updated_at": "9999-12-31T23:59:59+14:00"},
}  # fmt: skip


class Sink(ThreadingHTTPServer):
    """SendGrid's /v3/mail/send, recording (arrival time, message id, cart id, step) of each hand-over."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, str, str, str]] = []
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as SendGrid's API: no new connection per message

            def do_POST(handler) -> None:  # noqa: N805
                body = json.loads(handler.rfile.read(int(handler.headers.get("Content-Length") or 0)) or b"{}")
                args = body.get("custom_args") or {}
                with self.lock:
                    self.sent.append((time.time(), args.get("message_id", ""), args.get("cart_id", ""), args.get("step", "")))
                handler.send_response(202)
                handler.send_header("X-Message-Id", uuid.uuid4().hex)
                handler.send_header("Content-Length", "0")
                handler.end_headers()

            def log_message(handler, *args: Any) -> None:  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class Client:
    """Posts signed webhooks; keeps what was acknowledged (2xx) and when."""

    def __init__(self, base: str) -> None:
        import httpx

        self.http = httpx.Client(base_url=base, timeout=10)
        self.acked: dict[str, tuple[str, float]] = {}  # webhook id → (topic, time of the 2xx)
        self.refused = 0

    def wait_up(self, tend: Any = None, timeout: float = 120) -> None:
        """Until GET /healthz answers 200 (web, PostgreSQL and Redis all up)."""
        end, last = time.time() + timeout, ""
        while time.time() < end:
            try:
                answer = self.http.get("/healthz")
                if answer.status_code == 200:
                    return
                last = f"{answer.status_code} {answer.text[:200]}"
            except Exception as exc:  # noqa: BLE001 - not listening yet
                last = type(exc).__name__
            if tend is not None:
                tend()  # the supervisor keeps restarting what exits meanwhile
            time.sleep(0.1)
        raise RuntimeError(f"the web tier did not come up: {last}")

    def post(self, topic: str, payload: dict[str, Any], tries: int = 60) -> float | None:
        body = json.dumps(payload).encode()
        webhook_id = str(uuid.uuid4())
        headers = {"Content-Type": "application/json", "X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": payloads.SHOP,
                   "X-Shopify-Webhook-Id": webhook_id, "X-Shopify-Event-Id": str(uuid.uuid4()),
                   "X-Shopify-Triggered-At": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                   "X-Shopify-Hmac-Sha256": base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()}  # fmt: skip
        for _ in range(tries):  # as Shopify does: retry until a 2xx
            try:
                answer = self.http.post("/webhooks/shopify", content=body, headers=headers)
            except Exception:  # noqa: BLE001 - a refused or dropped connection: retry
                answer = None
            if answer is not None and answer.status_code == 200:
                self.acked[webhook_id] = (topic, time.time())
                return self.acked[webhook_id][1]
            self.refused += 1
            time.sleep(0.25)
        return None


def run(carts: int = 60, seed: int = 7, keep: bool = False) -> dict[str, Any]:
    from app.drill.cluster import Postgres, Redis, Supervisor
    from app.bench.ingest_env import free_port
    from ml.simulator import ShopperModel
    from recovery.storage import tables as t
    from recovery.storage.db import make_engine, make_sessionmaker
    from recovery.storage.schema import upgrade

    base = Path(tempfile.mkdtemp(prefix="cartresq-drill-"))
    pg, redis_server, sink = Postgres(base), Redis(base), Sink()
    pg.start()
    redis_server.start()
    import psycopg

    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE drill")
    url = pg.url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/drill"
    upgrade(url)
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as session:
        session.add(t.Store(platform="shopify", domain=payloads.SHOP, name="Drill", timezone="UTC", currency="USD",
                            plan="free", settings={"postal_address": "1 Example Street, Springfield, EX 00000",
                                                   "holdout_percent": 0, "sms_enabled": False}))  # fmt: skip
    port = free_port()
    logs = base / "logs"
    logs.mkdir()
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_server.url, "SHOPIFY_API_SECRET": SECRET,
           "SECRET_KEY": secrets.token_urlsafe(16), "CARTRESQ_VAR_DIR": str(base / "var"),
           "CARTRESQ_TIME_SCALE": str(SCALE), "SENDGRID_API_KEY": "drill", "CARTRESQ_REQUEUE_AFTER": "5",
           "SENDGRID_API_BASE": f"http://127.0.0.1:{sink.server_port}", "CARTRESQ_ALLOW_PRIVATE_HOSTS": "1",
           "APP_URL": f"http://127.0.0.1:{port}", "CARTRESQ_LOG_FORMAT": "json"}  # fmt: skip
    env["CARTRESQ_ENCRYPTION_KEY"] = base64.urlsafe_b64encode(os.urandom(32)).decode()
    sup = Supervisor(env, logs, port)
    sup.start_all()
    client = Client(f"http://127.0.0.1:{port}")
    recoveries: list[float] = []
    try:
        client.wait_up(sup.tend)
        deadlocks_before = _deadlocks(engine)
        model = ShopperModel(seed)
        people = [model.shopper(i) for i in range(carts)]
        faults = _faults(sup, pg, redis_server, client, recoveries)
        started = time.time()
        ordered: dict[str, float] = {}
        traffic = threading.Thread(target=_shoppers, args=(client, people, seed, ordered), daemon=True)
        traffic.start()
        for fault in faults:  # while the shoppers come and pay
            time.sleep(2)
            fault()
        traffic.join()
        _settle(engine, sup, deadline=time.time() + 180)
        table = _table(engine, client, sink, ordered, deadlocks_before, recoveries, len(POISON))
        table["seconds"] = round(time.time() - started, 1)
        table["restarts"] = sup.restarts
        return table
    finally:
        sup.stop_all()
        engine.dispose()
        redis_server.stop()
        pg.stop()
        sink.shutdown()
        sink.server_close()
        client.http.close()
        if not keep:
            shutil.rmtree(base, ignore_errors=True)


def _shoppers(client: Client, people: list[Any], seed: int, ordered: dict[str, float]) -> None:
    """Checkouts, poison payloads, then half the shoppers pay while their reminders come due."""
    for shopper in people:
        client.post("checkouts/create", payloads.checkout(seed, shopper, datetime.now(UTC), with_contact=True))
        time.sleep(0.05)
    for name, poison in POISON.items():
        client.post("checkouts/update", {**payloads.checkout(seed, people[0], datetime.now(UTC), with_contact=True),
                                         **poison, "token": poison.get("token", f"poison-{name}")})  # fmt: skip
    time.sleep(1.5)  # an abandonment delay (1 h at 3600x): the orders race the first reminders
    for shopper in people[::2]:
        at = client.post("orders/create", payloads.order(seed, shopper, datetime.now(UTC), 1000 + shopper.index))
        if at is not None:
            ordered[payloads.tokens(seed, shopper)[0]] = at
        time.sleep(0.1)


def _faults(sup: Any, pg: Any, redis_server: Any, client: Client, recoveries: list[float]) -> list[Any]:
    def timed(action: Any) -> Any:
        def fault() -> None:
            began = time.time()
            action()
            client.wait_up(sup.tend)
            recoveries.append(time.time() - began)
        return fault

    return [
        timed(lambda: sup.kill("web", child=True)), timed(lambda: sup.kill("worker", child=True)),
        timed(lambda: sup.kill("dispatcher")), timed(redis_server.restart), timed(lambda: pg.restart("fast")),
        timed(lambda: sup.kill("web")), timed(lambda: pg.restart("immediate")),
    ]  # fmt: skip


def _deadlocks(engine: Any) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return int(conn.execute(text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")).scalar_one())


def _settle(engine: Any, sup: Any, deadline: float) -> None:
    """Until every delivery is processed and no message is due, queued or sending (or the deadline)."""
    from sqlalchemy import text

    quiet = 0
    while time.time() < deadline and quiet < 3:
        sup.tend()
        try:
            with engine.connect() as conn:
                busy = conn.execute(text(
                    "SELECT (SELECT count(*) FROM webhook_deliveries WHERE processed_at IS NULL)"
                    " + (SELECT count(*) FROM recovery_messages WHERE status IN ('queued', 'sending')"
                    "    OR (status = 'planned' AND due_at <= now()))"
                )).scalar_one()  # fmt: skip
        except Exception:  # noqa: BLE001 - PostgreSQL restarting
            busy = 1
        quiet = quiet + 1 if busy == 0 else 0
        time.sleep(1)


def _table(engine: Any, client: Client, sink: Sink, ordered: dict[str, float], deadlocks_before: int,
           recoveries: list[float], poison: int) -> dict[str, Any]:  # fmt: skip
    from sqlalchemy import text

    with engine.connect() as conn:
        stored = {r[0]: r[1] for r in conn.execute(text("SELECT delivery_id, processed_at IS NOT NULL FROM webhook_deliveries"))}
        dead = conn.execute(text("SELECT count(*) FROM webhook_deliveries WHERE failed_at IS NOT NULL OR outcome = 'rejected'")).scalar_one()
        carts = {str(r[0]): r[1] for r in conn.execute(text("SELECT id, checkout_token FROM carts"))}
    sent = sink.sent
    per_message: dict[str, int] = {}
    for _, message_id, _, _ in sent:
        per_message[message_id] = per_message.get(message_id, 0) + 1
    after_purchase = sum(1 for at, _, cart_id, _ in sent if carts.get(cart_id) in ordered and at > ordered[carts[cart_id]])
    return {
        "acked": len(client.acked), "lost": sum(1 for w in client.acked if not stored.get(w)),
        "duplicated": sum(n - 1 for n in per_message.values()), "emails": len(sent),
        "sent_after_acknowledged_purchase": after_purchase, "dead_letters": dead, "poison_sent": poison,
        "deadlocks": _deadlocks(engine) - deadlocks_before, "answers_not_2xx": client.refused,
        "recovery_seconds_max": round(max(recoveries, default=0.0), 1),
    }  # fmt: skip
