"""End to end on WooCommerce, on Redis: a guest types an email on the block checkout and leaves; the
recovery email goes through the real Sender to the outbox; its restore link, followed through our app,
lands on the plugin's restore endpoint with a token the plugin's own PHP check accepts and the offer
code to apply; the order arrives, the cart is recovered and attributed, and nothing more is sent."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from connectors.woocommerce.restore import read_token
from recovery.storage import tables as t
from recovery.config.store_settings import parse_assignments
from recovery.storage.tables import utcnow
from tests.loop_helpers import HOUR, abandon_all, cart, messages, now, send_due
from tests.support.fake_woocommerce import load
from tests.woo_helpers import Woo, make_woo

PLUGIN = Path(__file__).resolve().parents[1] / "connectors" / "woocommerce" / "plugin" / "cartresq"
# The plugin's CartResQ_Restore::verify(), run by PHP with the few WordPress functions it needs stubbed.
HARNESS = r"""<?php
define( 'ABSPATH', '/' );
class WP_Error { public $code; function __construct( $code ) { $this->code = $code; } }
function is_wp_error( $x ) { return $x instanceof WP_Error; }
require '%s';
$in = json_decode( stream_get_contents( STDIN ), true );
$r  = CartResQ_Restore::verify( $in['token'], $in['secret'], $in['now'] );
echo json_encode( is_wp_error( $r ) ? array( 'error' => $r->code ) : $r );
"""


@pytest.fixture
def woo_redis(database_url: str, tmp_path: Path, redis_url: str) -> Iterator[Woo]:
    yield from make_woo(database_url, tmp_path, redis_url=redis_url, outbox=True)


def _gmt(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S")


def _verify_with_plugin(token: str, secret: str, tmp_path: Path) -> dict[str, object]:
    php = shutil.which("php")
    if php is None:  # the Python twin of the same check (tests/test_woocommerce_plugin.py pins them together)
        return read_token(secret, token, utcnow())
    harness = tmp_path / "verify.php"
    harness.write_text(HARNESS % (PLUGIN / "includes" / "class-cartresq-restore.php"))
    stdin = json.dumps({"token": token, "secret": secret, "now": int(utcnow().timestamp())})
    result = subprocess.run([php, str(harness)], input=stdin, capture_output=True, text=True, timeout=30)  # noqa: S603
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(json.loads(result.stdout))


def test_block_checkout_guest_is_won_back_through_the_outbox_email(woo_redis: Woo, tmp_path: Path) -> None:
    woo = woo_redis
    with woo.rt.sessions.begin() as session:
        store = session.scalars(select(t.Store).where(t.Store.platform == "woocommerce")).one()
        store.settings = {
            **(store.settings or {}),
            **parse_assignments(
                [
                    'sequence=[{"channel":"email","template":"offer","delay":"1h"},'
                    '{"channel":"email","template":"final_call","delay":"1d"}]',
                    "offer_percent=10",
                ]
            ),
        }
    # 1. The Checkout block's draft order, with the email the guest typed, arrives as a signed webhook.
    draft = {**load("order_updated__block_checkout_draft"), "date_modified_gmt": _gmt(now())}
    assert woo.deliver("order_updated__block_checkout_draft", **draft).status_code == 200
    # 2. Abandoned, then the first email goes out through the real Sender to the local outbox.
    at = now() + 2 * HOUR
    [cart_id] = abandon_all(woo.rt, at)
    assert send_due(woo.rt, at + 5 * HOUR) == ["sent"]
    [eml] = sorted((woo.rt.settings.outbox_dir / "email").glob("*.eml"))
    message = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert message["To"] == "jonas.weber@example.com" and message["List-Unsubscribe-Post"]
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    with woo.rt.sessions() as session:
        code = session.scalars(select(t.DiscountCode)).one().code
    assert code in text and woo.store.coupon_by_code(code)["email_restrictions"] == [
        "jonas.weber@example.com"
    ]
    # 3. The shopper follows the restore link through our app, to the store's restore endpoint.
    [link] = re.findall(r"https?://\S+/r/[A-Za-z0-9._~-]+", text)
    assert link.startswith(woo.live.url)
    answer = woo.client.get(urlsplit(link).path)
    assert answer.status_code == 302 and answer.headers["Referrer-Policy"] == "no-referrer"
    target = urlsplit(answer.headers["Location"])
    query = parse_qs(target.query)
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{woo.store.url}/" and query["coupon"] == [
        code
    ]
    # 4. The token is the one the plugin accepts: the guest's cart, rebuilt on any device.
    secret = woo.store.plugin_settings["restore_secret"]  # type: ignore[index]
    body = _verify_with_plugin(query["cartresq_restore"][0], secret, tmp_path)
    assert body["o"] == 7402 and body["i"] == [[233, 0, 2]]
    with woo.rt.sessions() as session:
        clicked = session.scalars(
            select(t.RecoveryMessage).where(t.RecoveryMessage.cart_id == cart_id)
        ).first()
        assert clicked is not None and clicked.clicked_at is not None
    # 5. The order is paid: the cart is recovered and attributed; nothing more goes out.
    paid = _gmt(now() + timedelta(minutes=1))
    order = {
        **draft,
        "status": "processing",
        "date_paid_gmt": paid,
        "date_modified_gmt": paid,
        "created_via": "store-api",
    }
    assert woo.deliver("order_updated__block_checkout_draft", **order).status_code == 200
    assert cart(woo.rt, cart_id).status == "recovered"
    with woo.rt.sessions() as session:
        placed = session.scalars(select(t.Order)).one()
    assert (placed.platform_order_id, placed.cart_id, placed.attribution) == ("7402", cart_id, "recovered")
    assert [m.status for m in messages(woo.rt, cart_id)] == ["sent", "cancelled"]
    assert send_due(woo.rt, at + 200 * HOUR) == []
    assert len(list((woo.rt.settings.outbox_dir / "email").glob("*.eml"))) == 1
