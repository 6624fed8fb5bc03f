"""The merchant dashboard: recovered revenue, lift against the holdout, recent carts and their messages."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, g, render_template
from sqlalchemy import select

from recovery import tables as t
from recovery.analytics import summarize
from recovery.content import TEMPLATES
from recovery.monitoring import store_report
from app.auth import require_session

bp = Blueprint("dashboard", __name__)


def mask(email: str | None) -> str:
    """Enough to recognise a shopper, not enough to harvest addresses from a screen."""
    if not email or "@" not in email:
        return "—"
    local, domain = email.split("@", 1)
    return f"{local[:1]}•••@{domain}"


@bp.get("/")
@require_session  # with Shopify configured: a valid session token, else 401 / the token bounce page
def index() -> str:
    from app import runtime

    with runtime().sessions() as session:
        # Inside Shopify admin the session token names one shop: its merchant sees that store only.
        stores = select(t.Store).where(t.Store.uninstalled_at.is_(None))
        if g.get("shop"):
            stores = stores.where(t.Store.platform == "shopify", t.Store.domain == g.shop)
        visible = session.scalars(stores).all()
        store_id = visible[0].id if g.get("shop") and visible else (-1 if g.get("shop") else None)
        summary = summarize(session, store_id)
        recent = select(t.Cart).order_by(t.Cart.last_activity_at.desc()).limit(25)
        carts = session.scalars(recent if store_id is None else recent.where(t.Cart.store_id == store_id)).all()
        # CAN-SPAM: without a postal address no email leaves (recovery/checks.py); say so where it is fixed.
        no_address = [s.domain for s in visible if not str((s.settings or {}).get("postal_address") or "").strip()]
        # Weekly drift (PSI) and calibration (ECE) of the send-time inputs, per store (recovery/monitoring.py).
        drift = {s.domain: w for s in visible if (w := store_report(session, s.id, datetime.now(UTC)).warnings)}
        messages = session.scalars(
            select(t.RecoveryMessage)
            .where(t.RecoveryMessage.cart_id.in_([c.id for c in carts]))
            .order_by(t.RecoveryMessage.step)
        ).all()
    by_cart: dict[int, list[t.RecoveryMessage]] = {}
    for message in messages:
        by_cart.setdefault(message.cart_id, []).append(message)
    return render_template(
        "dashboard.html", summary=summary, carts=carts, messages=by_cart, mask=mask, platform=g.get("store_status"),
        no_address=no_address, templates=TEMPLATES, drift=drift
    )
