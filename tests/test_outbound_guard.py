"""Issue 18, finding 4: no server-side request to a place we did not mean.

Push endpoints only on the browsers' push services; WooCommerce store URLs and the calls made to them only
to public addresses (checked on the connected socket, not only the name), no redirects, short deadlines;
unauthenticated row growth limited per address and purged. Local fakes need CARTRESQ_ALLOW_PRIVATE_HOSTS.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from app import create_app, dispatcher
from app.runtime import Runtime, build_runtime
from connectors.shopify.webhooks import SHOP_DOMAIN
from connectors.woocommerce.api import WooClient, WooError
from recovery.consent import purge
from recovery.storage import tables as t
from recovery.sending.channels import PermanentSendError
from recovery.sending.channels.webpush import WebPushChannel
from recovery.sending.netguard import DeadlineSession, PrivateAddress, check_public, is_public, push_endpoint_allowed
from recovery.storage.tables import utcnow
from tests.conftest import add_store, make_settings
from tests.support.fake_http import FakeServer, answer, serve
from tests.support.fake_woocommerce import FakeWooCommerce
from tests.support.push_service import VAPID_PRIVATE
from tests.support.shopify import SHOP
from tests.test_channels_webpush import message
from tests.test_push_web import SUBSCRIPTION

SHOP_ORIGIN = f"https://{SHOP}"


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = build_runtime(make_settings(database_url, tmp_path, new_rows_ip_limit="3/hour",
                                          vapid_private_key=VAPID_PRIVATE, vapid_subject="ops@example.com"))
    add_store(runtime)
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime) -> Any:
    return create_app(runtime=rt).test_client()


def count(rt: Runtime, model: Any) -> int:
    with rt.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


# --- push endpoints --------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", [
    "https://127.0.0.1/push", "https://169.254.169.254/latest/meta-data", "https://localhost/x",
    "https://kubernetes.default.svc/api", "https://push.example.com/x", "https://fcm.googleapis.com.evil.example/x",
    "https://evil.example/.push.apple.com", "https://user@fcm.googleapis.com/fcm/send/x",
    "https://fcm.googleapis.com:8443/fcm/send/x", "https://push.apple.com/x",
])
def test_subscriptions_only_for_known_push_services(rt: Runtime, client: Any, endpoint: str) -> None:
    doc = {"shop": SHOP, "subscription": {**SUBSCRIPTION, "endpoint": endpoint}}
    response = client.post("/push/subscribe", json=doc, headers={"Origin": SHOP_ORIGIN})
    assert response.status_code == 400, endpoint
    assert count(rt, t.PushSubscription) == 0


def test_the_four_push_services_are_accepted() -> None:
    for endpoint in ("https://fcm.googleapis.com/fcm/send/abc", "https://updates.push.services.mozilla.com/wpush/v2/x",
                     "https://web.push.apple.com/QGx", "https://wns2-par02p.notify.windows.com/w/?token=x"):
        assert push_endpoint_allowed(endpoint), endpoint


def test_push_subscriptions_are_limited_per_address(rt: Runtime, client: Any) -> None:
    def subscribe(n: int) -> int:
        doc = {"shop": SHOP, "subscription": {**SUBSCRIPTION, "endpoint": f"https://fcm.googleapis.com/fcm/send/{n}"}}
        return int(client.post("/push/subscribe", json=doc, headers={"Origin": SHOP_ORIGIN},
                               environ_base={"REMOTE_ADDR": "198.51.100.4"}).status_code)

    # Refused requests (wrong origin) do not count; 3 rows per address and hour.
    assert client.post("/push/subscribe", json={"shop": SHOP, "subscription": SUBSCRIPTION},
                       headers={"Origin": "https://evil.example"}).status_code == 403
    assert [subscribe(n) for n in range(4)] == [201, 201, 201, 429]
    assert count(rt, t.PushSubscription) == 3


def test_the_push_channel_refuses_other_hosts_and_private_addresses() -> None:
    handler = answer(201)
    with serve(FakeServer(handler)) as server:
        strict = WebPushChannel(VAPID_PRIVATE, "ops@example.com")
        with pytest.raises(PermanentSendError, match="not on a known push service"):
            strict.send(message(f"{server.url}/push/abc"))
        assert server.requests == []


def test_the_push_channel_follows_no_redirect() -> None:
    with serve(FakeServer(answer(201))) as target, serve(FakeServer(answer(201))) as push_service:
        push_service.script.append(answer(307, headers={"Location": f"{target.url}/inside"}))
        channel = WebPushChannel(VAPID_PRIVATE, "ops@example.com", allow_private=True)  # the fake is local
        with pytest.raises(PermanentSendError):
            channel.send(message(f"{push_service.url}/push/abc"))
        assert len(push_service.requests) == 1 and target.requests == []


# --- public addresses only, checked on the connection ------------------------------------------------------


@pytest.mark.parametrize("address, public", [
    ("93.184.216.34", True), ("2606:4700:4700::1111", True), ("127.0.0.1", False), ("10.1.2.3", False),
    ("172.16.0.1", False), ("192.168.1.1", False), ("169.254.169.254", False), ("100.64.0.1", False),
    ("0.0.0.0", False), ("::1", False), ("fc00::1", False), ("fe80::1", False), ("::ffff:127.0.0.1", False),
    ("::ffff:169.254.169.254", False), ("2002:7f00:1::1", False), ("224.0.0.1", False), ("not an ip", False),
])
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(address) is public


def test_names_that_resolve_to_private_addresses_are_refused() -> None:
    for host in ("localhost", "127.0.0.1", "169.254.169.254", "no-such-host.invalid"):
        with pytest.raises(PrivateAddress):
            check_public(host)


def test_the_connected_peer_is_checked_not_just_the_name() -> None:
    """`localhost` resolves to loopback after any name check (as a rebinding name would): the socket check
    refuses it before a byte is sent."""
    with serve(FakeServer(answer(200, "inside"))) as server:
        port = server.url.rsplit(":", 1)[1]
        for url in (f"http://localhost:{port}/", f"http://127.0.0.1:{port}/"):
            with pytest.raises(PrivateAddress):
                DeadlineSession().get(url, timeout=2)
        assert server.requests == []
        assert DeadlineSession(allow_private=True).get(f"http://127.0.0.1:{port}/", timeout=2).text == "inside"


def test_guarded_calls_follow_no_redirect() -> None:
    with serve(FakeServer(answer(200, "metadata"))) as target, serve(FakeServer(answer(200))) as first:
        first.script.append(answer(302, headers={"Location": f"{target.url}/latest/meta-data"}))
        response = DeadlineSession(allow_private=True).get(first.url, timeout=2)
        assert response.status_code == 302 and target.requests == []


def test_woocommerce_calls_to_private_addresses_are_refused() -> None:
    store = FakeWooCommerce().start()
    try:
        client = WooClient(store.url, "ck_x", "cs_x", allow_http=True)
        with pytest.raises(WooError, match="unreachable"):
            client.system_status()
        assert store.requests == []
    finally:
        store.stop()


def test_a_store_that_never_answers_is_given_up_quickly() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts connections (the kernel does) and never answers
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        client = WooClient(url, "ck_x", "cs_x", allow_http=True, allow_private=True, timeout=(1.0, 1.0), retries=False)
        started = time.monotonic()
        with pytest.raises(WooError, match="unreachable"):
            client.system_status()
        assert time.monotonic() - started < 10  # the read timeout, once: not 30 s times retries
    finally:
        listener.close()


# --- WooCommerce activation starts ------------------------------------------------------------------------


@pytest.mark.parametrize("store_url", [
    "https://127.0.0.1:8443", "https://169.254.169.254", "https://localhost", "https://10.0.0.7/shop",
    "https://[::1]", "https://no-such-host.invalid",
])
def test_activation_refuses_store_urls_on_private_addresses(rt: Runtime, client: Any, store_url: str) -> None:
    response = client.get("/auth/woocommerce", query_string={"store_url": store_url})
    assert response.status_code == 400
    assert count(rt, t.WooActivation) == 0


def test_activation_starts_are_limited_per_address(database_url: str, tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(database_url, tmp_path, new_rows_ip_limit="2/hour", allow_private_hosts=True))
    try:
        client = create_app(runtime=runtime).test_client()
        codes = [client.get("/auth/woocommerce", query_string={"store_url": f"https://shop{n}.example.com"},
                            environ_base={"REMOTE_ADDR": "198.51.100.5"}).status_code for n in range(3)]
        assert codes == [302, 302, 429] and count(runtime, t.WooActivation) == 2
    finally:
        runtime.close()


# --- purged by the dispatcher -------------------------------------------------------------------------


def test_the_dispatcher_purges_expired_unauthenticated_rows(rt: Runtime) -> None:
    now = utcnow()
    old, fresh = now - timedelta(days=8), now - timedelta(minutes=5)
    with rt.sessions.begin() as session:
        store_id = session.scalars(select(t.Store.id)).one()
        session.add_all([
            t.OAuthState(state="expired", shop=SHOP, created_at=old, expires_at=now - timedelta(minutes=1)),
            t.OAuthState(state="live", shop=SHOP, created_at=fresh, expires_at=now + timedelta(minutes=5)),
            t.WooActivation(token_hash="a" * 64, store_url="https://a.example.com", created_at=old,
                            expires_at=now - timedelta(minutes=1)),
            t.WooActivation(token_hash="b" * 64, store_url="https://b.example.com", created_at=fresh,
                            expires_at=now + timedelta(minutes=55)),
            t.PushSubscription(store_id=store_id, endpoint="https://fcm.googleapis.com/fcm/send/old",
                               keys={"p256dh": "x", "auth": "y"}, created_at=old),
            t.PushSubscription(store_id=store_id, endpoint="https://fcm.googleapis.com/fcm/send/new",
                               keys={"p256dh": "x", "auth": "y"}, created_at=fresh),
        ])
    dispatcher._purged["next"] = 0.0
    dispatcher.run_once(rt)
    with rt.sessions() as session:
        assert session.scalars(select(t.OAuthState.state)).all() == ["live"]
        assert session.scalars(select(t.WooActivation.store_url)).all() == ["https://b.example.com"]
        assert session.scalars(select(t.PushSubscription.endpoint)).all() == ["https://fcm.googleapis.com/fcm/send/new"]
    assert purge.purge_unauthenticated  # the function the dispatcher runs


# --- shop-domain patterns are full matches ------------------------------------------------------------


def test_shop_domain_patterns_match_the_whole_string(client: Any) -> None:
    assert SHOP_DOMAIN.match(SHOP) and not SHOP_DOMAIN.match(SHOP + "\n")
    assert not SHOP_DOMAIN.match(SHOP + ".evil.example") and not SHOP_DOMAIN.match("x" + SHOP + "/")
    body = {"v": 1, "shop": SHOP + " evil", "sid": "k3JxQ9vT2mWb7YzA", "type": "cart", "ts": int(time.time() * 1000),
            "cart": {"token": "c1-abc", "items": []}}
    response = client.post("/track", json=body, headers={"Origin": SHOP_ORIGIN})
    assert response.status_code == 400 and "shop" in response.json["error"]


def test_a_host_that_trickles_its_answer_is_cut_at_the_deadline() -> None:
    """Each byte arrives well within the read timeout, the whole answer never would: the total deadline
    ends the call, in the headers as in the body."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
                if stop.wait(0.2):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    server = threading.Thread(target=trickle, daemon=True)
    server.start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        started = time.monotonic()
        with pytest.raises(requests.Timeout):
            DeadlineSession(allow_private=True, deadline=2.0).get(url, timeout=(1.0, 1.0))
        assert time.monotonic() - started < 6  # two seconds and a little; unbounded without the deadline
    finally:
        stop.set()
        listener.close()
        server.join(5)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_an_answer_over_max_bytes_is_refused_not_read(declared: bool) -> None:
    """A storefront (or the domain it redirects to) answering megabytes is refused at the cap, whether it
    says its length or streams without one; a short answer is read as before."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from recovery.sending.netguard import AnswerTooLarge

    class Big(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            size = 100 if self.path == "/small" else 5_000_000
            self.send_response(200)
            if declared:
                self.send_header("Content-Length", str(size))
            else:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for start in range(0, size, 65536):
                    part = b"x" * min(65536, size - start)
                    self.wfile.write(part if declared else b"%x\r\n%s\r\n" % (len(part), part))
                if not declared:
                    self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass  # the client hung up at the cap

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Big)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        http = DeadlineSession(allow_private=True, deadline=5.0, max_bytes=64 * 1024)
        assert http.get(f"{base}/small").content == b"x" * 100
        with pytest.raises(AnswerTooLarge):
            http.get(f"{base}/big")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
