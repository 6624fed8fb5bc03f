"""Never a 500 on input (issue 18): Hypothesis sends generated input to every public route, signed and
unsigned, and no answer may be a 5xx.

Each example draws one JSON-ish value, one raw body and one string, and sends them to every route family
below (about `PER_EXAMPLE` requests), so the generation cost is shared. Values include deeply nested
arrays, NaN/Infinity, lone surrogates, invalid UTF-8, huge numbers and wrong types in documented payloads.
`CARTRESQ_FUZZ_EXAMPLES` (default 100000) is the number of requests to send in all; the module's last
test checks the count was reached and prints it. One module-scoped app on SQLite (Flask test client).
"""

from __future__ import annotations

import base64
import copy
import io
import json
import os
import shutil
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote_to_bytes, urlencode

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from sqlalchemy import select

import connectors
from app import create_app
from app.web.providers import twilio_signature
from app.runtime import Runtime, build_runtime
from connectors import shopify as shopify_connector
from connectors import woocommerce as woo_connector
from recovery.intake import deliveries as intake
from recovery.storage import tables as t
from recovery.storage.crypto import Vault
from tests.conftest import add_store, make_settings
from tests.support import shopify
from tests.support.shopify import SHOP

#: Under xdist (make test) the chunks and the count of what they sent must share one worker's process.
pytestmark = pytest.mark.xdist_group("fuzz")

TOTAL = int(os.environ.get("CARTRESQ_FUZZ_EXAMPLES", "100000"))
PER_EXAMPLE = 24
SENT: Counter[str] = Counter()

SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(SENDGRID_KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
TWILIO_TOKEN = "fuzz-twilio-auth-token"
APP_URL = "http://localhost"
WOO_KEY, WOO_SECRET, WOO_TOPIC = "fuzzstorekey0001", "fuzz-woo-secret", "order.updated"

# --- strategies -----------------------------------------------------------------------------------------

ANY_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=24)
KEYS = st.one_of(ANY_TEXT, st.sampled_from([
    "id", "token", "cart_token", "email", "phone", "line_items", "customer", "shop_domain", "shop_id",
    "updated_at", "total_price", "currency", "price", "quantity", "variant_id", "endpoint", "keys", "p256dh",
    "auth", "sid", "shop", "type", "event", "sg_message_id", "message_id", "timestamp", "data_request",
    "orders_to_redact", "myshopify_domain", "status", "date_modified_gmt", "billing", "meta_data"]))
SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30), st.integers(min_value=-(2**63), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True), ANY_TEXT,
    st.sampled_from(["", "0", "-1", "1e999", "NaN", "2026-09-14T14:42:10-04:00", "2026-13-45T99:99:99Z", SHOP,
                     "USD", "EUR", "a@example.com", "+18285550147", "https://127.0.0.1/x", "<script>", "\x00"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)), max_leaves=12)


def _dump(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


RAW = st.one_of(
    VALUES.map(_dump),  # NaN / Infinity tokens, \ud800 escapes
    VALUES.map(lambda v: json.dumps(v, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")),
    st.integers(0, 5000).map(lambda d: b"[" * d + b"]" * d),  # deep nesting
    st.integers(0, 3000).map(lambda d: b'{"a":' * d + b"1" + b"}" * d),
    st.binary(max_size=120),
    st.integers(0, 400).map(lambda n: b"9" * n),  # a huge number
)
FIXTURES = ["checkouts_create", "checkouts_update", "orders_create", "customers_update__unsubscribed",
            "products_update", "inventory_levels_update", "checkouts_delete", "customers_redact",
            "customers_data_request", "shop_redact", "app_uninstalled"]
LOADED = {name: shopify.load(name) for name in FIXTURES}


@st.composite
def mutated_fixture(draw: Any) -> tuple[str, dict[str, Any]]:
    """A documented payload with some fields replaced by generated values (wrong types, huge numbers...)."""
    name = draw(st.sampled_from(FIXTURES))
    payload = copy.deepcopy(LOADED[name])
    for _ in range(draw(st.integers(1, 3))):
        target: Any = payload
        while isinstance(target, dict) and target and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(target)))
            if not isinstance(target[key], (dict, list)) or not target[key]:
                break
            inner = target[key]
            target = inner if isinstance(inner, dict) else (inner[0] if isinstance(inner[0], dict) else target)
        if isinstance(target, dict) and target:
            target[draw(st.sampled_from(sorted(target)))] = draw(VALUES)
    return shopify.topic_of(name), payload


# --- the app --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_client(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, Any]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    shutil.copy(sqlite_template, tmp / "fuzz.db")
    rt = build_runtime(make_settings(
        f"sqlite:///{tmp / 'fuzz.db'}", tmp, app_url=APP_URL, track_ip_limit="100000000/minute",
        track_shop_limit="100000000/minute", sendgrid_verification_key=SENDGRID_PUBLIC,
        twilio_auth_token=TWILIO_TOKEN, admin_token="fuzz-operator-token",
    ))
    store_id = add_store(rt)
    with rt.sessions.begin() as session:
        woo = t.Store(platform="woocommerce", domain="fuzz-store.example.com", settings={}, timezone="UTC",
                      currency="USD", plan="free")
        session.add(woo)
        session.flush()
        session.add(t.WooConnection(store_id=woo.id, store_key=WOO_KEY, store_url="https://fuzz-store.example.com"))
        session.add(t.WooWebhook(store_id=woo.id, topic=WOO_TOPIC, webhook_id=7,
                                 secret=Vault(rt.settings.encryption_keys).seal({"secret": WOO_SECRET})))
    assert store_id
    yield rt, create_app(runtime=rt).test_client()
    rt.close()


def send(client: Any, family: str, method: str, path: str, *, data: bytes | dict[str, str] = b"",
         headers: dict[str, str] | None = None, query_string: dict[str, str] | None = None) -> int:
    """One request straight through the WSGI app (the test client's environ builder cost more than the
    app); the status, which must not be a 5xx."""
    headers = dict(headers or {})
    if isinstance(data, dict):
        data, headers["Content-Type"] = urlencode(data, errors="surrogatepass").encode(), "application/x-www-form-urlencoded"
    environ = {
        "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": urlencode(query_string or {}, errors="surrogatepass"), "SERVER_NAME": "localhost", "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(data), "wsgi.errors": sys.stderr, "wsgi.multithread": False,
        "wsgi.multiprocess": False, "wsgi.run_once": False, "CONTENT_LENGTH": str(len(data)),
        "CONTENT_TYPE": headers.pop("Content-Type", ""),
    }
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value.encode("utf-8", "surrogatepass").decode("latin-1")
    status: list[str] = []
    chunks = client.application(environ, lambda s, h, e=None: status.append(s))
    try:
        body = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    SENT[family] += 1
    code = int(status[0].split(" ", 1)[0])
    assert code < 500, (family, method, path, code, body[:300])
    return code


def shopify_headers(body: bytes, topic: str, draw: Any) -> dict[str, str]:
    headers = shopify.headers(body, topic)
    if draw(st.integers(0, 4)) == 0:  # sometimes a header is wrong too (a shop, a time, an id)
        name = draw(st.sampled_from(["X-Shopify-Shop-Domain", "X-Shopify-Triggered-At", "X-Shopify-Event-Id",
                                     "X-Shopify-Webhook-Id", "X-Shopify-Topic"]))
        headers[name] = draw(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
    return headers


def sendgrid_headers(body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    signature = SENDGRID_KEY.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp, "Content-Type": "application/json"}


def twilio_form(path: str, form: dict[str, str]) -> dict[str, Any]:
    return {"data": form, "headers": {"X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, APP_URL + path, form)}}



def woo_headers(body: bytes, topic: str) -> dict[str, str]:
    return {"X-WC-Webhook-Topic": topic, "X-WC-Webhook-ID": "7", "X-WC-Webhook-Delivery-ID": str(uuid.uuid4()),
            "X-WC-Webhook-Signature": woo_connector.sign(body, WOO_SECRET), "Content-Type": "application/json"}


def _process_new(rt: Runtime) -> None:
    """The worker's step for what the edge accepted: never an exception (a rejection is a visible state)."""
    with rt.sessions() as session:
        pending = session.scalars(select(t.WebhookDelivery.id).where(t.WebhookDelivery.processed_at.is_(None))).all()
    for pk in pending:
        with rt.sessions.begin() as session:
            intake.process_delivery(session, pk, connectors.normalize)


# --- the property ---------------------------------------------------------------------------------------


#: Shrinking a failure can take minutes; the suite reports the failing input as drawn (CARTRESQ_FUZZ_SHRINK=1
#: to minimize it).
PHASES = [Phase.explicit, Phase.generate] + ([Phase.shrink] if os.environ.get("CARTRESQ_FUZZ_SHRINK") == "1" else [])


#: The run is cut in chunks, each its own test with its own fixed seed, so that each stays well within the
#: suite's per-test timeout on a busy machine.
CHUNKS = 4


@settings(max_examples=max(1, TOTAL // PER_EXAMPLE // CHUNKS), deadline=None, database=None,
          suppress_health_check=list(HealthCheck), phases=PHASES)
@given(value=VALUES, raw=RAW, text=ANY_TEXT, fixture=mutated_fixture(), data=st.data())
def _every_route(app_client: tuple[Runtime, Any], value: Any, raw: bytes, text: str,
                 fixture: tuple[str, dict[str, Any]], data: Any) -> None:
    rt, client = app_client
    draw = data.draw
    body = _dump(value)
    segment = quote(text.encode("utf-8", "surrogatepass"), safe="") or "x"
    # Shopify webhooks: unsigned, signed over generated bodies under any topic, signed documented payloads
    topic = draw(st.sampled_from([*shopify_connector.TOPICS, "carts/update", "shop/update", ""]))
    send(client, "shopify unsigned", "POST", "/webhooks/shopify", data=raw, headers={"X-Shopify-Topic": topic})
    for payload in (raw, body):
        send(client, "shopify signed", "POST", "/webhooks/shopify", data=payload,
             headers=shopify_headers(payload, topic, draw))
    fixture_topic, fixture_payload = fixture
    documented = _dump(fixture_payload)
    send(client, "shopify documented", "POST", "/webhooks/shopify", data=documented,
         headers=shopify_headers(documented, fixture_topic, draw))
    # WooCommerce webhooks: signed (known topic and secret) and unsigned, and an unknown store key
    for payload in (raw, body):
        send(client, "woocommerce signed", "POST", f"/webhooks/woocommerce/{WOO_KEY}", data=payload,
             headers=woo_headers(payload, WOO_TOPIC))
    send(client, "woocommerce unsigned", "POST", f"/webhooks/woocommerce/{segment}", data=raw)
    # Storefront beacons and push subscriptions
    for payload in (raw, body, _dump({"v": 1, "shop": SHOP, "type": "cart", "sid": "k3JxQ9vT2mWb7YzA", "cart": value})):
        send(client, "track", "POST", "/track", data=payload,
             headers={"Content-Type": "text/plain", "Origin": f"https://{SHOP}"})
    send(client, "push", "POST", "/push/subscribe", data=body, headers={"Content-Type": "application/json",
                                                                         "Origin": f"https://{SHOP}"})
    send(client, "push", "POST", "/proxy/push/subscribe", data=raw, query_string={"shop": text})
    send(client, "push", "GET", "/push/key", query_string={"shop": text})
    # Provider callbacks, signed as the providers sign them
    events = value if isinstance(value, list) else [value]
    sendgrid_body = _dump(events) if draw(st.booleans()) else raw
    send(client, "sendgrid", "POST", "/webhooks/sendgrid", data=sendgrid_body, headers=sendgrid_headers(sendgrid_body))
    form = {"From": draw(st.sampled_from(["+18285550147", text, ""])), "Body": text,
            "MessageSid": "SM" + "0" * 32, "MessageStatus": draw(st.sampled_from(["delivered", "failed", text]))}
    form = {k: v.encode("utf-8", "replace").decode("utf-8") for k, v in form.items()}
    send(client, "sms", "POST", "/sms/inbound", **twilio_form("/sms/inbound", form))
    send(client, "sms", "POST", "/sms/status", **twilio_form("/sms/status", form))
    # Links
    for path in (f"/r/{segment}", f"/o/{segment}", f"/u/{segment}"):
        send(client, "links", "GET", path)
    send(client, "links", "POST", f"/u/{segment}", data={"List-Unsubscribe": "One-Click"})
    # Install and activation flows
    send(client, "auth", "GET", "/auth/shopify", query_string={"shop": text, "hmac": text, "timestamp": text})
    send(client, "auth", "GET", "/auth/shopify/callback",
         query_string={"code": text, "shop": SHOP, "state": text, "timestamp": "1", "hmac": text})
    send(client, "auth", "GET", "/auth/woocommerce", query_string={"store_url": text})
    send(client, "auth", "POST", "/auth/woocommerce/callback", data=raw, query_string={"t": text},
         headers={"Content-Type": "application/json"})
    if fixture_topic in shopify_connector.TOPICS:
        _process_new(rt)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_no_public_route_answers_5xx_to_generated_input(app_client, chunk: int) -> None:  # type: ignore[no-untyped-def]
    seed(18_000 + chunk)(_every_route)(app_client)  # fixed seeds: the same inputs on every run


def test_the_fuzz_sent_the_promised_number_of_inputs() -> None:
    total = sum(SENT.values())
    print(f"\nfuzz: {total} requests, 0 answered 5xx; by route family: {dict(sorted(SENT.items()))}")
    assert total >= TOTAL * 0.95, SENT
