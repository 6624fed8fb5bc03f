"""One settings object, built from the environment once per process and passed down."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: The scopes CartResQ uses; shopify.app.toml `[access_scopes]` lists the same (a test checks).
DEFAULT_SHOPIFY_SCOPES = (
    "read_orders,read_customers,read_products,read_inventory,write_discounts,write_pixels,read_customer_events"
    ",write_app_proxy"  # the app proxy that serves the web push service worker (app/web/push.py)
)


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
    #: Where Admin API and OAuth calls go: unset means https://{shop} (tests point it at a local fake).
    shopify_admin_base: str | None = None
    shopify_api_version: str = "2026-10"
    #: Scopes asked for by the authorization-code grant (managed install takes them from shopify.app.toml).
    shopify_scopes: str = DEFAULT_SHOPIFY_SCOPES
    sendgrid_api_key: str | None = None
    smtp_url: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from: str | None = None
    vapid_private_key: str | None = None
    vapid_public_key: str | None = None
    vapid_subject: str | None = None
    # --- provider adapters (messaging) ---
    #: SendGrid's signed event webhook public key (base64 DER, from the Mail Settings page).
    sendgrid_verification_key: str | None = None
    #: Unsubscribe group (ASM) attached to every recovery email; one-click unsubscribes land in it.
    sendgrid_asm_group_id: int | None = None
    sendgrid_base_url: str = "https://api.sendgrid.com"
    twilio_messaging_service_sid: str | None = None
    twilio_base_url: str = "https://api.twilio.com"
    # --- end provider adapters ---
    openai_api_key: str | None = None
    #: OpenAI-compatible chat completions endpoint for subject lines (tests point it at a local fake).
    openai_base_url: str = "https://api.openai.com/v1"
    openai_model: str = "gpt-4o-mini"
    openai_timeout: float = 3.0
    outbox_dir: Path = Path("var/outbox")
    var_dir: Path = Path("var")
    model_dir: Path = Path("var/model")
    time_scale: float = 1.0
    #: Share of first reminders sent at a uniformly random slot of the window (CARTRESQ_EXPLORE_EPSILON):
    #: the exploration that lets `cartresq evaluate` judge a challenger on logged sends.
    explore_epsilon: float = 0.1
    max_webhook_bytes: int = 5 * 1024 * 1024
    #: Seconds before work whose job vanished (a stored delivery, a queued message) is enqueued again;
    #: a message still `sending` after twice that is marked failed (interrupted), never resent.
    requeue_after: float = 60.0
    #: Seconds without a heartbeat after which Dramatiq counts a worker process as dead and its claimed jobs
    #: go back to the queue (CARTRESQ_BROKER_HEARTBEAT_TIMEOUT; Dramatiq's own default, 60). A live worker
    #: heartbeats on every fetch and ack, so lower it only as far as the longest single job.
    broker_heartbeat_timeout: float = 60.0
    #: Webhook deliveries reach the workers through the dispatcher's relay (`cartresq dispatcher` polls for
    #: new rows and enqueues them in batches) instead of one enqueue per request in the web process.
    #: CARTRESQ_INTAKE_RELAY: on, off, or auto (the default: on with PostgreSQL and Redis, where a
    #: dispatcher always runs; the embedded default enqueues in-process).
    intake_relay: bool = False
    #: POST /track rate limits (`limits` notation, e.g. "120/minute"): per client IP and per shop.
    track_ip_limit: str = "120/minute"
    track_shop_limit: str = "6000/minute"
    #: POST /track stores the beacons that need no answer (cart, view, ...) in the `track_inbox` table in one
    #: statement, and the dispatcher's track relay applies them (recovery/intake/track_inbox.py). PostgreSQL
    #: only. CARTRESQ_TRACK_INBOX: on, off, or auto (the default: on with PostgreSQL and Redis, where a
    #: dispatcher always runs; embedded mode and SQLite apply beacons at the edge).
    track_inbox: bool = False
    #: New addresses the tracker may attach to carts, per client IP and per shop (`limits` notation).
    track_contact_ip_limit: str = "10/hour"
    track_contact_shop_limit: str = "300/hour"
    #: Exit-popup discount codes: per client IP (`limits` notation) and per shop per day (a count).
    exit_code_ip_limit: str = "3/day"
    exit_code_shop_daily: int = 200
    #: Outbound calls to loopback/private/link-local addresses (push endpoints, store URLs): local
    #: development and tests only (CARTRESQ_ALLOW_PRIVATE_HOSTS=1).
    allow_private_hosts: bool = False
    #: Rows a request without credentials may start (push subscriptions, WooCommerce activations, Shopify
    #: OAuth states), per client IP and kind (`limits` notation).
    new_rows_ip_limit: str = "20/hour"
    # --- WooCommerce ---
    #: Seconds between reconciliations of each WooCommerce store (webhook health, order backfill).
    woo_reconcile_every: float = 900.0
    #: Plain-http store URLs, for local development and tests only; real stores need https.
    woo_allow_http: bool = False
    # --- end WooCommerce ---
    #: CARTRESQ_ADMIN_TOKEN: the operator's access to store data (bearer, or basic auth with any user name).
    #: Without Shopify keys it is the only way in; `serve` refuses a non-loopback address without it.
    admin_token: str | None = None
    # --- operations ---
    #: SENTRY_DSN: error reports to Sentry (personal data scrubbed); unset: none.
    sentry_dsn: str | None = None
    #: CARTRESQ_LOG_FORMAT: `json` (one event per line) or `text`.
    log_format: str = "json"
    #: CARTRESQ_WORKER_METRICS=on: `cartresq worker` serves Prometheus metrics on :9191 (Dramatiq's
    #: middleware; dramatiq_prom_port/dramatiq_prom_host move it).
    worker_metrics: bool = False
    # --- end operations ---
    # --- billing (docs/billing.md) ---
    #: CARTRESQ_BILLING=on: plans and their limits (Shopify Billing API; Stripe for WooCommerce when
    #: STRIPE_SECRET_KEY is set). Off (the default): every store unlimited, billing hidden (self-hosting).
    billing: bool = False
    #: SHOPIFY_BILLING_TEST=1: Shopify subscriptions are created with test: true (no charge).
    shopify_billing_test: bool = False
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    #: STRIPE_API_BASE: where the stripe library sends its calls (tests point it at a local fake).
    stripe_api_base: str | None = None
    #: Stripe Price ids per plan: STRIPE_PRICE_STARTER, STRIPE_PRICE_GROWTH, STRIPE_PRICE_PRO.
    stripe_prices: Mapping[str, str] = field(default_factory=dict)
    #: CARTRESQ_OPERATOR_EMAIL: where the Enterprise "contact us" form goes.
    operator_email: str | None = None
    # --- end billing ---
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        """No Redis: the worker and dispatcher run inside the web process."""
        return not self.redis_url

    @property
    def web_push_configured(self) -> bool:
        """VAPID keys are set: `GET /push/key` answers, so storefronts may offer browser reminders."""
        return bool(self.vapid_private_key and self.vapid_subject)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        var_dir = Path(env.get("CARTRESQ_VAR_DIR") or "var")  # empty is unset, never the working directory
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
            shopify_admin_base=(env.get("SHOPIFY_ADMIN_BASE") or "").rstrip("/") or None,
            shopify_api_version=env.get("SHOPIFY_API_VERSION") or "2026-10",
            shopify_scopes=env.get("SHOPIFY_SCOPES") or DEFAULT_SHOPIFY_SCOPES,
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
            sendgrid_verification_key=env.get("SENDGRID_WEBHOOK_VERIFICATION_KEY") or None,
            sendgrid_asm_group_id=int(env["SENDGRID_ASM_GROUP_ID"]) if env.get("SENDGRID_ASM_GROUP_ID") else None,
            sendgrid_base_url=(env.get("SENDGRID_API_BASE") or "https://api.sendgrid.com").rstrip("/"),
            twilio_messaging_service_sid=env.get("TWILIO_MESSAGING_SERVICE_SID") or None,
            twilio_base_url=(env.get("TWILIO_API_BASE") or "https://api.twilio.com").rstrip("/"),
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            openai_base_url=(env.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/"),
            openai_model=env.get("CARTRESQ_OPENAI_MODEL") or "gpt-4o-mini",
            openai_timeout=float(env.get("CARTRESQ_OPENAI_TIMEOUT") or 3),
            outbox_dir=Path(env.get("CARTRESQ_OUTBOX_DIR") or var_dir / "outbox"),
            var_dir=var_dir,
            model_dir=Path(env.get("CARTRESQ_MODEL_DIR") or var_dir / "model"),
            time_scale=time_scale,
            requeue_after=float(env.get("CARTRESQ_REQUEUE_AFTER") or 60),
            broker_heartbeat_timeout=_heartbeat_timeout(env.get("CARTRESQ_BROKER_HEARTBEAT_TIMEOUT")),
            explore_epsilon=_epsilon(env.get("CARTRESQ_EXPLORE_EPSILON")),
            intake_relay=_relay_mode(env.get("CARTRESQ_INTAKE_RELAY") or "auto", database_url, env.get("REDIS_URL")),
            woo_reconcile_every=float(env.get("CARTRESQ_WOO_RECONCILE_EVERY") or 900),
            woo_allow_http=(env.get("CARTRESQ_WOO_ALLOW_HTTP") or "").lower() in ("1", "true", "yes"),
            track_ip_limit=env.get("CARTRESQ_TRACK_IP_LIMIT") or "120/minute",
            track_shop_limit=env.get("CARTRESQ_TRACK_SHOP_LIMIT") or "6000/minute",
            track_inbox=_track_inbox_mode(env.get("CARTRESQ_TRACK_INBOX") or "auto", database_url, env.get("REDIS_URL")),
            track_contact_ip_limit=env.get("CARTRESQ_TRACK_CONTACT_IP_LIMIT") or "10/hour",
            track_contact_shop_limit=env.get("CARTRESQ_TRACK_CONTACT_SHOP_LIMIT") or "300/hour",
            exit_code_ip_limit=env.get("CARTRESQ_EXIT_CODE_IP_LIMIT") or "3/day",
            exit_code_shop_daily=int(env.get("CARTRESQ_EXIT_CODE_SHOP_DAILY") or 200),
            new_rows_ip_limit=env.get("CARTRESQ_NEW_ROWS_IP_LIMIT") or "20/hour",
            allow_private_hosts=(env.get("CARTRESQ_ALLOW_PRIVATE_HOSTS") or "").lower() in ("1", "true", "yes"),
            admin_token=env.get("CARTRESQ_ADMIN_TOKEN") or None,
            sentry_dsn=env.get("SENTRY_DSN") or None,
            log_format=(env.get("CARTRESQ_LOG_FORMAT") or "json").strip().lower(),
            worker_metrics=(env.get("CARTRESQ_WORKER_METRICS") or "").lower() in ("1", "on", "true", "yes"),
            billing=_on_off(env.get("CARTRESQ_BILLING") or "off", "CARTRESQ_BILLING"),
            shopify_billing_test=(env.get("SHOPIFY_BILLING_TEST") or "").lower() in ("1", "on", "true", "yes"),
            stripe_secret_key=env.get("STRIPE_SECRET_KEY") or None,
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET") or None,
            stripe_api_base=(env.get("STRIPE_API_BASE") or "").rstrip("/") or None,
            stripe_prices={k: v for k, v in (("starter", env.get("STRIPE_PRICE_STARTER")),
                           ("growth", env.get("STRIPE_PRICE_GROWTH")), ("pro", env.get("STRIPE_PRICE_PRO"))) if v},
            operator_email=env.get("CARTRESQ_OPERATOR_EMAIL") or None,
        )

    @property
    def billed_platforms(self) -> frozenset[str]:
        """The platforms whose stores have plans: none with billing off; Shopify with app keys (the Billing
        API); WooCommerce with a Stripe key. A platform without a payment path stays unlimited."""
        if not self.billing:
            return frozenset()
        shopify = {"shopify"} if self.shopify_api_key and self.shopify_api_secret else set()
        return frozenset(shopify | ({"woocommerce"} if self.stripe_secret_key else set()))


def _on_off(value: str, name: str) -> bool:
    value = value.strip().lower()
    if value in ("on", "1", "true", "yes"):
        return True
    if value in ("off", "0", "false", "no"):
        return False
    raise ValueError(f"{name} must be on or off")


def _heartbeat_timeout(value: str | None) -> float:
    seconds = float(value or 60)
    if not 5 <= seconds <= 3600:
        raise ValueError("CARTRESQ_BROKER_HEARTBEAT_TIMEOUT must be between 5 and 3600 seconds")
    return seconds


def _relay_mode(value: str, database_url: str, redis_url: str | None) -> bool:
    value = value.strip().lower()
    if value == "auto":
        return database_url.startswith(("postgres://", "postgresql")) and bool(redis_url)
    if value in ("on", "1", "true", "yes"):
        return True
    if value in ("off", "0", "false", "no"):
        return False
    raise ValueError("CARTRESQ_INTAKE_RELAY must be on, off or auto")


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
    from recovery.storage.private_files import private_dir, write_new

    path = var_dir / name
    private_dir(var_dir, tighten=True)  # ./var holds the keys and the database: 0700, even if made wider
    if path.exists():
        return path.read_text().strip()
    key = make() if make else secrets.token_urlsafe(48)
    if not write_new(path, key):  # another process made it first: theirs is the key
        return path.read_text().strip()
    return key


def _epsilon(raw: str | None) -> float:
    value = float(raw) if raw not in (None, "") else 0.1
    if not 0.0 <= value <= 1.0:
        raise ValueError("CARTRESQ_EXPLORE_EPSILON must lie between 0 and 1")
    return value


def _track_inbox_mode(value: str, database_url: str, redis_url: str | None) -> bool:
    try:
        return _relay_mode(value, database_url, redis_url)  # the same three values, the same `auto`
    except ValueError:
        raise ValueError("CARTRESQ_TRACK_INBOX must be on, off or auto") from None
