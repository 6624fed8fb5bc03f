"""The merchant dashboard: recovered revenue, lift against the holdout, recent carts and their messages."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from typing import Any

from flask import Blueprint, g, redirect, render_template, request
from sqlalchemy import select

from app.web.access import require_store_access, store_scope
from recovery.storage import tables as t
from recovery.measure import lift as lift_stats
from recovery.measure.analytics import summarize
from recovery.messages.content import TEMPLATES
from recovery.measure.monitoring import store_report

bp = Blueprint("dashboard", __name__)


def mask(email: str | None) -> str:
    """Enough to recognise a shopper, not enough to harvest addresses from a screen."""
    if not email or "@" not in email:
        return "—"
    local, domain = email.split("@", 1)
    return f"{local[:1]}•••@{domain}"


_EMAIL = re.compile(r"[^\s@<>()\[\]:;,\"']+@[^\s@<>()\[\]:;,\"']+")
_PHONE = re.compile(r"\+?\d[\d ().-]{6,}\d")


def mask_text(text: str | None) -> str:
    """A reason or provider error as shown: any address in it masked, any phone number hidden."""
    if not text:
        return ""
    return _PHONE.sub("•••", _EMAIL.sub(lambda m: mask(m.group(0)), text))


@bp.get("/")
def root() -> Any:
    """The merchant app lives at /app: Shopify admin's document load (App Bridge's `id_token`, or `shop` and
    `host`) goes there with its parameters, and so does a browser without credentials (to sign in). A request
    with an Authorization header keeps this cross-store view (the operator's)."""
    embedded_load = request.args.get("id_token") or (request.args.get("shop") and request.args.get("host"))
    browser = "text/html" in (request.headers.get("Accept") or "") and request.authorization is None
    if embedded_load or browser:
        query = request.query_string.decode()
        return redirect("/app/" + (f"?{query}" if query else ""), 302)
    return index()


@require_store_access  # the operator token, or inside Shopify admin a valid session token; else 401
def index() -> str:
    from app.web import runtime

    with runtime().sessions() as session:
        # Inside Shopify admin the session token names one shop: its merchant sees that store only.
        scope = store_scope()
        visible = session.scalars(
            select(t.Store).where(t.Store.uninstalled_at.is_(None), t.Store.id.in_(scope))
        ).all()
        # The operator sees every store together; a merchant their own (none: an empty dashboard).
        store_id = None if g.get("operator") else (visible[0].id if visible else -1)
        summary = summarize(session, store_id)
        recent = select(t.Cart).where(t.Cart.store_id.in_(scope)).order_by(t.Cart.last_activity_at.desc()).limit(25)
        carts = session.scalars(recent).all()
        # CAN-SPAM: without a postal address no email leaves (recovery/sending/checks.py); say so where it is fixed.
        no_address = [s.domain for s in visible if not str((s.settings or {}).get("postal_address") or "").strip()]
        # Weekly drift (PSI) and calibration (ECE) of the send-time inputs, per store (recovery/measure/monitoring.py).
        drift = {s.domain: w for s in visible if (w := store_report(session, s.id, datetime.now(UTC)).warnings)}
        messages = session.scalars(
            select(t.RecoveryMessage)
            .where(t.RecoveryMessage.cart_id.in_([c.id for c in carts]))
            .order_by(t.RecoveryMessage.step)
        ).all()
    from app.web.merchant.reasons import message_name, words  # here: the merchant package imports this module

    by_cart: dict[int, list[t.RecoveryMessage]] = {}
    for message in messages:
        by_cart.setdefault(message.cart_id, []).append(message)
    return render_template(
        "dashboard.html", summary=summary, carts=carts, messages=by_cart, mask=mask, mask_text=mask_text,
        platform=g.get("store_status"), no_address=no_address, templates=TEMPLATES, drift=drift,
        estimate=lift_stats.estimate,
        message_name=message_name, reason_words=words,  # no raw codes or database ids for the merchant
    )
