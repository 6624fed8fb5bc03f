"""Issue 18, smaller doors: security headers, frame-ancestors only for a verified shop, access logs without
link tokens or id_token, ./var 0700 with its database and key files 0600."""

from __future__ import annotations

import logging
import os
import stat
import threading
from pathlib import Path

import httpx
import pytest
from werkzeug.serving import make_server

from app import create_app
from app.logs import loggable, RedactingHandler
from recovery.storage.db import make_engine
from recovery.config.settings import Settings
from tests.shopify_app_helpers import API_KEY, SECRET, fake, rt, web  # noqa: F401
from tests.support.fake_shopify import session_token
from tests.support.shopify import SHOP

EVIL = "evil-twin.myshopify.com"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_html_pages_carry_csp_nosniff_and_referrer_policy(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/u/not-a-token")  # an HTML page anyone can load
    assert page.mimetype == "text/html"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and csp.endswith("frame-ancestors 'none'")
    assert client.get("/healthz").headers["X-Content-Type-Options"] == "nosniff"


def test_frame_ancestors_names_the_verified_shop_never_the_shop_parameter(rt, web) -> None:  # noqa: F811
    # Given a valid session token for SHOP, and a `shop` parameter naming another store
    page = web.get(f"/app/?shop={EVIL}&embedded=1&id_token={session_token(SHOP, API_KEY, SECRET)}")
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert f"frame-ancestors https://{SHOP} https://admin.shopify.com" in csp and EVIL not in csp
    # The token bounce page trusts no parameter: Shopify's admin only
    bounce = web.get(f"/auth/shopify/patch-id-token?shop={EVIL}&shopify-reload=/")
    assert bounce.headers["Content-Security-Policy"].endswith("frame-ancestors https://admin.shopify.com")
    # An invalid token: no frame-ancestors for anyone
    refused = web.get(f"/app/?shop={EVIL}&id_token=forged")
    assert EVIL not in refused.headers.get("Content-Security-Policy", "")


@pytest.mark.parametrize("target, logged", [
    ("/r/eyJhbGciOi.secret", "/r/<token>"),
    ("/u/abc.def.ghi?x=1", "/u/<token>?…"),
    ("/o/tok", "/o/<token>"),
    ("/?shop=a.myshopify.com&id_token=eyJsecret", "/?…"),
    ("/webhooks/woocommerce/store-key-secret", "/webhooks/woocommerce/<token>"),
    ("/webhooks/shopify", "/webhooks/shopify"),
])
def test_loggable_keeps_the_route_and_drops_secrets(target: str, logged: str) -> None:
    assert loggable(target) == logged


def test_the_served_access_log_has_no_token(client, caplog) -> None:  # type: ignore[no-untyped-def]
    app = client.application
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=RedactingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    caplog.set_level(logging.INFO, logger="werkzeug")
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        httpx.get(f"{base}/u/link-token-SECRET1")
        httpx.get(f"{base}/?shop={SHOP}&id_token=SECRET2")
    finally:
        server.shutdown()
        thread.join()
    text = caplog.text
    assert "/u/<token>" in text and "SECRET" not in text


def test_var_and_its_secrets_are_private_from_creation(tmp_path: Path) -> None:
    var = tmp_path / "var"
    old = os.umask(0o022)  # the usual umask: a plain mkdir/open would make 0755/0644
    try:
        settings = Settings.from_env({"CARTRESQ_VAR_DIR": str(var)})
        make_engine(settings.database_url).dispose()
    finally:
        os.umask(old)
    assert mode(var) == 0o700
    assert mode(var / "secret_key") == 0o600 and mode(var / "encryption_key") == 0o600
    assert mode(var / "cartresq.db") == 0o600
    # An existing wider ./var is narrowed; the keys are read back, not rewritten
    os.chmod(var, 0o755)
    again = Settings.from_env({"CARTRESQ_VAR_DIR": str(var)})
    assert mode(var) == 0o700 and again.secret_key == settings.secret_key


def test_the_outbox_is_private(runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from recovery.sending.channels.outbox import OutboxChannel  # noqa: F401  (exists: the local adapter)
    from recovery.storage.private_files import private_dir

    private_dir(tmp_path / "outbox" / "email")
    assert mode(tmp_path / "outbox") == 0o700 and mode(tmp_path / "outbox" / "email") == 0o700


def test_create_app_without_gunicorn_needs_no_bind_check(runtime) -> None:  # type: ignore[no-untyped-def]
    assert create_app(runtime=runtime) is not None


def test_the_gunicorn_access_log_has_no_token() -> None:
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config

    from app.logs import GunicornLogger

    logger = GunicornLogger(Config())
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/u/SECRET1?id_token=SECRET2", "PATH_INFO": "/u/SECRET1",
               "QUERY_STRING": "id_token=SECRET2", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_REFERER": "https://a.example/r/SECRET3"}
    atoms = logger.atoms(SimpleNamespace(status="200 OK", sent=0, headers=[]), SimpleNamespace(headers=[]),
                         environ, timedelta(0))
    assert atoms["r"] == "GET /u/<token>?… HTTP/1.1" and atoms["U"] == "/u/<token>"
    assert "SECRET" not in repr(atoms)


def test_a_shared_directory_given_as_var_is_never_narrowed(tmp_path: Path) -> None:
    from recovery.storage.private_files import private_dir

    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # like /tmp or /dev/shm
    private_dir(shared, tighten=True)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    own = tmp_path / "own"
    own.mkdir(mode=0o755)
    private_dir(own, tighten=True)
    assert stat.S_IMODE(own.stat().st_mode) == 0o700


def test_an_empty_var_dir_setting_is_the_default_not_the_working_directory() -> None:
    assert Settings.from_env({"CARTRESQ_VAR_DIR": "", "SECRET_KEY": "k", "CARTRESQ_ENCRYPTION_KEY": "x" * 44}).var_dir == Path("var")


def test_only_the_directories_mkdir_made_are_narrowed_whatever_an_existence_check_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A wrong existence check (here Path.exists patched, as a race test does) once made every ancestor 0700,
    # / and /tmp included. chmod is recorded, not applied, so a regression cannot narrow this machine's dirs.
    from recovery.storage import private_files

    narrowed: list[str] = []
    monkeypatch.setattr(private_files.os, "chmod", lambda p, mode: narrowed.append(str(p)))
    monkeypatch.setattr(Path, "exists", lambda self: False)
    private_files.private_dir(tmp_path / "a" / "b")
    monkeypatch.undo()
    assert narrowed == [str(tmp_path / "a"), str(tmp_path / "a" / "b")]
