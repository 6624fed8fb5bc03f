"""One settings object, built from the environment once per process and passed down."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None = None
    app_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""
    encryption_keys: tuple[str, ...] = ()
    shopify_api_key: str | None = None
    shopify_api_secret: str | None = None
    #: The previous client secret during a rotation: Shopify may sign with it for up to an hour.
    shopify_api_secret_old: str | None = None
    sendgrid_api_key: str | None = None
    smtp_url: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from: str | None = None
    vapid_private_key: str | None = None
    vapid_public_key: str | None = None
    vapid_subject: str | None = None
    openai_api_key: str | None = None
    outbox_dir: Path = Path("var/outbox")
    var_dir: Path = Path("var")
    model_dir: Path = Path("var/model")
    time_scale: float = 1.0
    max_webhook_bytes: int = 5 * 1024 * 1024
    #: Seconds before work whose job vanished (a stored delivery, a queued message) is enqueued again;
    #: a message still `sending` after twice that is marked failed (interrupted), never resent.
    requeue_after: float = 60.0
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        """No Redis: the worker and dispatcher run inside the web process."""
        return not self.redis_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        var_dir = Path(env.get("CARTRESQ_VAR_DIR", "var"))
        database_url = env.get("DATABASE_URL") or f"sqlite:///{(var_dir / 'cartresq.db').absolute()}"
        time_scale = float(env.get("CARTRESQ_TIME_SCALE", "1") or 1)
        if time_scale <= 0:
            raise ValueError("CARTRESQ_TIME_SCALE must be a positive number")
        keys = tuple(k.strip() for k in env.get("CARTRESQ_ENCRYPTION_KEY", "").split(",") if k.strip())
        return cls(
            database_url=_normalize_db_url(database_url),
            redis_url=env.get("REDIS_URL") or None,
            app_url=(env.get("APP_URL") or "http://127.0.0.1:8000").rstrip("/"),
            secret_key=env.get("SECRET_KEY") or _local_secret(var_dir),
            shopify_api_secret_old=env.get("SHOPIFY_API_SECRET_OLD") or None,
            encryption_keys=keys or (_local_secret(var_dir, "encryption_key", _fernet_key),),
            shopify_api_key=env.get("SHOPIFY_API_KEY") or None,
            shopify_api_secret=env.get("SHOPIFY_API_SECRET") or None,
            sendgrid_api_key=env.get("SENDGRID_API_KEY") or None,
            smtp_url=env.get("SMTP_URL") or None,
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID") or None,
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN") or None,
            twilio_from=env.get("TWILIO_FROM") or None,
            vapid_private_key=env.get("VAPID_PRIVATE_KEY") or None,
            vapid_public_key=env.get("VAPID_PUBLIC_KEY") or None,
            vapid_subject=env.get("VAPID_SUBJECT") or None,
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            outbox_dir=Path(env.get("CARTRESQ_OUTBOX_DIR") or var_dir / "outbox"),
            var_dir=var_dir,
            model_dir=Path(env.get("CARTRESQ_MODEL_DIR") or var_dir / "model"),
            time_scale=time_scale,
            requeue_after=float(env.get("CARTRESQ_REQUEUE_AFTER") or 60),
        )


def _normalize_db_url(url: str) -> str:
    # Heroku-style URLs and bare postgresql:// both mean psycopg 3 here.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _local_secret(var_dir: Path, name: str = "secret_key", make: Callable[[], str] | None = None) -> str:
    """A per-installation secret for the embedded default, kept so signed links and tokens survive restarts."""
    path = var_dir / name
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = make() if make else secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key
