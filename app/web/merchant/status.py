"""Store status: platform connection and token, webhooks and reconciliation, postal address, dead letters;
each problem with the button that fixes it (never a command to run)."""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, redirect, render_template, request, url_for
from sqlalchemy import func, select

from app.web.merchant import bp
from app.web.merchant.context import current_store, merchant_required
from recovery.intake import deadletters
from recovery.storage import tables as t
from recovery.config.store_settings import effective

log = logging.getLogger(__name__)


def _rt():  # type: ignore[no-untyped-def]
    from app.web import runtime

    return runtime()


@bp.get("/status")
@merchant_required
def status() -> Any:
    store = current_store()
    with _rt().sessions() as db:
        fresh = db.get(t.Store, store.id)
        d = t.WebhookDelivery
        waiting = db.scalar(select(func.count()).where(d.store_id == store.id, d.processed_at.is_(None)))
        last = db.scalar(select(func.max(d.received_at)).where(d.store_id == store.id))
        letters = deadletters.dead_letters(db, store.id, limit=50)
        woo = db.scalar(select(t.WooConnection).where(t.WooConnection.store_id == store.id))
        hooks = db.scalars(select(t.WooWebhook).where(t.WooWebhook.store_id == store.id)
                           .order_by(t.WooWebhook.topic)).all() if woo else []
        db.expunge_all()
    settings = effective(fresh.settings or {})
    token = "missing"
    if fresh.credentials:
        token = "needs reconnecting" if fresh.needs_reauth_at else "working"
    return render_template(
        "merchant/status.html", store=fresh, waiting=waiting, last=last, letters=letters, woo=woo, hooks=hooks,
        token=token, address=str(settings["postal_address"]).strip(), retried=request.args.get("retried"),
        checked=request.args.get("checked"),
    )


@bp.post("/status/deliveries/<id:delivery_id>/retry")
@merchant_required
def retry_delivery(delivery_id: int) -> Any:
    store = current_store()
    with _rt().sessions.begin() as db:  # the job is enqueued after commit
        if not deadletters.retry_dead(db, store.id, delivery_id):
            abort(404, "no dead letter with that id for this store")
    return redirect(url_for("merchant.status", store=request.args.get("store"), retried=delivery_id), 303)


@bp.post("/status/reconcile")
@merchant_required
def reconcile() -> Any:
    """Check and repair the store's webhooks and catch up on what they missed, now (the dispatcher's periodic
    job, run for this store: WooCommerce's reconcile, or Shopify's, as `cartresq shopify reconcile` does)."""
    store, rt = current_store(), _rt()
    if store.platform == "woocommerce":
        from connectors.woocommerce.reconcile import reconcile_store
        from recovery.storage.crypto import Vault

        report = reconcile_store(
            rt.sessions, rt.engine, Vault(rt.settings.encryption_keys), store.id, app_url=rt.settings.app_url,
            allow_http=rt.settings.woo_allow_http, hand_off=rt.hand_off_delivery,
            allow_private=rt.settings.allow_private_hosts,
        )
        outcome = "failed" if report.error else "ok"
    elif rt.shopify is not None:
        from connectors.shopify import reconcile as shopify_reconcile

        try:
            shopify_reconcile.reconcile_store(rt.sessions, rt.shopify.admin, store.id, rt.shopify.timing)
            outcome = "ok"
        except Exception as exc:  # auth or API failure: shown on the page; the periodic job retries
            log.warning("reconcile of store %s failed: %s", store.id, type(exc).__name__)
            outcome = "failed"
    else:
        abort(400, "Shopify is not configured in this deployment")
    return redirect(url_for("merchant.status", store=request.args.get("store"), checked=outcome), 303)
