"""The WordPress plugin: every PHP file lints, the readme has its header, and the PHP restore check
accepts exactly the tokens the app signs. Needs `php` (CI installs php-cli); skipped without it,
even under CI=true, because PHP is not a service this suite provides."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.woocommerce.restore import make_token
from tests.support.fake_woocommerce import load

PLUGIN = Path(__file__).resolve().parents[1] / "connectors" / "woocommerce" / "plugin" / "cartresq"
PHP = shutil.which("php")
needs_php = pytest.mark.skipif(PHP is None, reason="php is not installed (apt-get install php-cli)")

HARNESS = r"""<?php
define( 'ABSPATH', '/' );
class WP_Error { public $code; function __construct( $code ) { $this->code = $code; } }
function is_wp_error( $x ) { return $x instanceof WP_Error; }
require '%s';
$in = json_decode( stream_get_contents( STDIN ), true );
$out = array();
foreach ( $in['tokens'] as $token ) {
	$r = CartResQ_Restore::verify( $token, $in['secret'], $in['now'] );
	$out[] = is_wp_error( $r ) ? $r->code : $r;
}
echo json_encode( $out );
"""


def test_plugin_files_are_all_there() -> None:
    readme = (PLUGIN / "readme.txt").read_text()
    assert readme.startswith("=== CartResQ for WooCommerce ===")
    for header in ("Requires at least:", "Tested up to:", "Requires PHP:", "Stable tag:", "License:"):
        assert header in readme
    main = (PLUGIN / "cartresq.php").read_text()
    assert "Plugin Name:" in main and "Requires Plugins:  woocommerce" in main
    frontend = (PLUGIN / "includes" / "class-cartresq-frontend.php").read_text()
    assert "'strategy'  => 'defer'" in frontend and "/static/cartresq-tracker.js" in frontend
    js = (PLUGIN / "assets" / "cartresq-woo.js").read_text()
    for selector in ("#email", "#billing-phone", "#billing_email", "#billing_phone"):
        assert selector in js


@needs_php
@pytest.mark.parametrize("path", sorted(PLUGIN.rglob("*.php")), ids=lambda p: p.name)
def test_php_lint(path: Path) -> None:
    command = [str(PHP), "-l", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)  # noqa: S603
    assert result.returncode == 0, result.stdout + result.stderr


@needs_php
def test_php_restore_check_accepts_only_our_signed_unexpired_tokens(tmp_path: Path) -> None:
    secret = "ab" * 32
    now = datetime(2026, 9, 15, 12, 0, tzinfo=UTC)
    order = load("order_created__classic_pending")
    order["coupon_lines"] = [{"id": 1, "code": "save10", "discount": "5.00"}]
    good = make_token(secret, order, now)
    payload, signature = good.split(".")
    tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + signature
    expired = make_token(secret, order, now - timedelta(days=31))
    harness = tmp_path / "harness.php"
    harness.write_text(HARNESS % (PLUGIN / "includes" / "class-cartresq-restore.php"))
    stdin = json.dumps(
        {
            "secret": secret,
            "now": int(now.timestamp()),
            "tokens": [good, tampered, expired, make_token("cd" * 32, order, now), "garbage"],
        }
    )
    command = [str(PHP), str(harness)]
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=30)  # noqa: S603
    assert result.returncode == 0, result.stdout + result.stderr
    restored, *refused = json.loads(result.stdout)
    assert (
        restored["i"] == [[412, 418, 2], [377, 0, 1]]
        and restored["c"] == ["save10"]
        and restored["o"] == 7311
    )
    assert refused == ["cartresq_invalid", "cartresq_expired", "cartresq_invalid", "cartresq_invalid"]
