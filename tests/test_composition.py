"""Settings, composition roots, health, credentials at rest and the direction of dependencies."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import func, select

from app import create_app
from app.dispatcher import run_once
from app.runtime import build_runtime
from recovery.storage import tables as t
from recovery.storage.crypto import Vault
from recovery.config.settings import Settings
from tests.conftest import add_store, drain, make_settings
from tests.support import shopify

ROOT = Path(__file__).resolve().parents[1]


def test_embedded_default_is_sqlite_under_var_and_the_in_process_broker(tmp_path: Path) -> None:
    settings = Settings.from_env({"CARTRESQ_VAR_DIR": str(tmp_path / "var")})
    assert settings.database_url == f"sqlite:///{(tmp_path / 'var' / 'cartresq.db').absolute()}"
    assert settings.embedded and settings.redis_url is None
    assert settings.outbox_dir == tmp_path / "var" / "outbox"
    # secrets are generated once and kept, so signed links and stored tokens survive a restart
    again = Settings.from_env({"CARTRESQ_VAR_DIR": str(tmp_path / "var")})
    assert settings.secret_key == again.secret_key and len(settings.secret_key) >= 40
    assert settings.encryption_keys == again.encryption_keys
    rt = build_runtime(settings)
    assert isinstance(rt.broker, StubBroker)
    rt.close()


def test_environment_selects_postgresql_and_redis(tmp_path: Path) -> None:
    k1, k2 = (Fernet.generate_key().decode() for _ in range(2))
    settings = Settings.from_env({
        "CARTRESQ_VAR_DIR": str(tmp_path),
        "DATABASE_URL": "postgres://app@db.example.com:5432/cartresq",
        "REDIS_URL": "redis://cache.example.com:6379/0",
        "CARTRESQ_TIME_SCALE": "3600",
        "CARTRESQ_ENCRYPTION_KEY": f"{k1}, {k2}",
    })
    assert settings.database_url == "postgresql+psycopg://app@db.example.com:5432/cartresq"
    assert not settings.embedded and settings.time_scale == 3600
    assert settings.encryption_keys == (k1, k2)
    # Building the runtime opens no connection: these hosts do not even resolve
    rt = build_runtime(settings)
    assert isinstance(rt.broker, RedisBroker)
    rt.broker.close()
    rt.engine.dispose()


def test_importing_the_code_opens_no_connection() -> None:
    # A fresh interpreter with unreachable services configured imports every module without error.
    code = (
        "import app, app.cli, app.worker, app.web.webhooks, app.dispatcher, connectors.shopify,"
        " recovery.intake.deliveries"
    )
    env = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "REDIS_URL": "redis://127.0.0.1:1/0", "PATH": ""}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_healthz_reports_database_and_broker(runtime, client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["database"] == {"ok": True, "backend": runtime.engine.dialect.name}
    assert response.json["broker"] == {"ok": True, "backend": "in-process"}


def test_healthz_is_503_when_redis_or_the_database_is_down(tmp_path: Path, sqlite_url: str) -> None:
    rt = build_runtime(make_settings("postgresql+psycopg://postgres@127.0.0.1:1/none", tmp_path, redis_url="redis://127.0.0.1:1/0"))
    response = create_app(runtime=rt).test_client().get("/healthz")
    rt.broker.close()
    rt.engine.dispose()
    assert response.status_code == 503
    assert response.json["database"]["ok"] is False and response.json["broker"]["ok"] is False


def test_storage_outage_is_503_not_500_and_writes_nothing(tmp_path: Path) -> None:
    rt = build_runtime(make_settings("postgresql+psycopg://postgres@127.0.0.1:1/none", tmp_path))
    response = shopify.post(create_app(runtime=rt).test_client(), "checkouts_create")
    rt.close()
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"


def test_broker_outage_loses_no_delivery(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    # Given Redis is down when Shopify delivers: the delivery is stored and acknowledged anyway
    down = build_runtime(make_settings(database_url, tmp_path, redis_url="redis://127.0.0.1:1/0"))
    add_store(down)
    response = shopify.post(create_app(runtime=down).test_client(), "checkouts_create")
    down.broker.close()
    down.engine.dispose()
    assert response.status_code == 200
    # When the dispatcher's sweep runs once the delivery is older than the threshold, with Redis back
    up = build_runtime(make_settings(database_url, tmp_path, redis_url=request.getfixturevalue("redis_url")))
    with up.sessions.begin() as session:
        for delivery in session.scalars(select(t.WebhookDelivery)):
            delivery.received_at -= timedelta(seconds=up.settings.requeue_after)
    assert run_once(up).deliveries == 1
    drain(up)
    # Then the cart exists, and a second sweep finds nothing left to do
    with up.sessions() as session:
        assert session.scalar(select(func.count()).select_from(t.Cart)) == 1
    assert run_once(up).deliveries == 0
    up.close()


def test_credentials_survive_key_rotation() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed_with_old = Vault([old]).seal({"access_token": "shpat_1"})
    rotated_vault = Vault([new, old])
    assert rotated_vault.open(sealed_with_old) == {"access_token": "shpat_1"}
    re_sealed = rotated_vault.rotate(sealed_with_old)
    assert Vault([new]).open(re_sealed) == {"access_token": "shpat_1"}
    with pytest.raises(ValueError, match="cannot be decrypted"):
        Vault([new]).open(sealed_with_old)
