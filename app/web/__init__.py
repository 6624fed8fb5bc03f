"""The web edge (Flask): routes, access checks, headers. `create_app()` builds the WSGI app; gunicorn starts it through `app:create_app()`."""

from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from app.web import access
from app.runtime import Runtime, build_runtime
from recovery.config.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    if settings is None and runtime is None:  # the WSGI entry (gunicorn): this process's logs and reports
        from app.observability import setup_process

        settings = Settings.from_env()
        setup_process(settings, "web")
    settings = settings or (runtime.settings if runtime else Settings.from_env())
    hosts = access.gunicorn_hosts()
    if hosts is not None:  # `gunicorn 'app:create_app()'`: the same refusal as `cartresq serve`
        access.check_exposure(settings, hosts)
    runtime = runtime or build_runtime(settings)
    app = Flask(__name__)
    app.config.update(SECRET_KEY=settings.secret_key, MAX_CONTENT_LENGTH=settings.max_webhook_bytes)
    app.extensions["cartresq"] = runtime
    from app.web import ids

    ids.register(app)  # `<id:...>` in routes: a stored row id, 1 .. 2**63 - 1 (else 404, never an OverflowError)

    from app.web import bare, dashboard, health, links, webhooks

    app.register_blueprint(webhooks.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(links.bp)
    app.register_blueprint(dashboard.bp)
    from app.web import auth as shopify_auth

    app.register_blueprint(shopify_auth.bp)  # /auth/shopify, /auth/shopify/callback: install and tokens
    from app.web import providers

    app.register_blueprint(providers.bp)  # SendGrid events, Twilio inbound/status
    from app.web import push

    app.register_blueprint(push.bp)  # web push: /push/key, /push/sw.js, /push/subscribe, app proxy routes
    from app.web import preview

    app.register_blueprint(preview.bp)  # GET /preview/<template>: the sequence's messages with a sample cart
    from app.web import track

    app.register_blueprint(track.bp)  # POST /track: storefront tracker beacons
    from app.web import woocommerce

    app.register_blueprint(woocommerce.bp)  # /auth/woocommerce..., POST /webhooks/woocommerce/<store_key>
    from app.web import assets

    app.register_blueprint(assets.bp)  # GET /static/cartresq-tracker.js for the WordPress plugin
    from app import observability
    from app.web import operator

    observability.install(app)  # GET /metrics (operator only), X-Request-Id on every request

    app.register_blueprint(operator.bp)  # /ops/stores/<shop>: dead letters and their retry (operator only)
    from app.web import merchant

    app.register_blueprint(merchant.bp)  # /app: the merchant app (app/web/merchant)
    from app.web import stripe_webhooks

    app.register_blueprint(stripe_webhooks.bp)  # POST /webhooks/stripe: plans of hosted WooCommerce stores

    from app.web import headers

    headers.install(app)  # nosniff, Referrer-Policy, CSP with frame-ancestors for a verified shop only
    bare.register(app)  # only with CARTRESQ_BENCH_BARE=1: the ingest benchmark's baseline endpoint
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(SQLAlchemyError, _storage_unavailable)
    return app


def runtime() -> Runtime:
    return current_app.extensions["cartresq"]  # type: ignore[no-any-return]


def _http_error(exc: HTTPException) -> tuple[object, int]:
    return jsonify(error=exc.name, detail=exc.description), exc.code or 500


def _storage_unavailable(exc: SQLAlchemyError) -> tuple[object, int, dict[str, str]]:
    # The platform retries a 503. Each write is one transaction, so nothing is half-written; a commit whose
    # answer was lost (the server died right after it) may have landed: the retry is then a duplicate,
    # deduplicated on the delivery id.
    log.error("storage unavailable: %s", type(exc).__name__)
    return jsonify(error="Service Unavailable", detail="storage is unavailable, retry later"), 503, {"Retry-After": "5"}
