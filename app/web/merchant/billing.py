"""The plan picker at /app/billing: the four plans, this period's usage, upgrade/downgrade, Enterprise contact.

Shopify stores subscribe through the Billing API (connectors/shopify/billing.py); WooCommerce stores through
Stripe Checkout and the customer portal (connectors/woocommerce/billing.py). With CARTRESQ_BILLING=off, or
for a platform without a payment path, every page here is 404 and the store is unlimited.
"""

from __future__ import annotations

import logging
from typing import Any
from datetime import UTC, datetime

from flask import abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.web.merchant import bp
from app.web.merchant.context import current_store, merchant_required
from recovery.billing.plans import PLANS, REASONS, SELF_SERVE
from recovery.billing.subscriptions import apply_plan_change
from recovery.billing.usage import limits_for, plan_banner, usage

log = logging.getLogger(__name__)

#: The Enterprise form's bounds: anything longer is refused (400), never truncated silently.
MAX_MESSAGE = 2000


def _runtime():  # type: ignore[no-untyped-def]
    from app.web import runtime

    return runtime()


def limits():  # type: ignore[no-untyped-def]
    settings = _runtime().settings
    return limits_for(settings.billing, settings.billed_platforms)


def banner() -> str | None:
    """For base.html's include: the current store's plan banner, or None."""
    from flask import g

    store, policy = g.get("store"), limits()
    if store is None or policy is None:
        return None
    with _runtime().sessions() as session:
        return plan_banner(session, store, datetime.now(UTC), policy)


def _billed_store():  # type: ignore[no-untyped-def]
    policy, store = limits(), current_store()
    if policy is None or not policy.applies(store):
        abort(404)
    return store


def _keep_query(endpoint: str) -> str:
    """The endpoint's URL with this request's query (the session token or ?store=): both doors keep working."""
    query = request.query_string.decode()
    return url_for(endpoint) + (f"?{query}" if query else "")


def _refresh_shopify(store) -> None:  # type: ignore[no-untyped-def]
    """Inside the app, Shopify's word is read again: an approval, a cancellation, a new period."""
    rt = _runtime()
    if store.platform != "shopify" or rt.shopify is None:
        return
    from connectors.shopify.admin import AdminError
    from connectors.shopify.billing import read_subscription

    try:
        change = read_subscription(rt.shopify.quick_admin or rt.shopify.admin, store.domain, datetime.now(UTC))
    except (AdminError, Exception) as exc:  # the page still shows what we know
        log.warning("billing: reading %s's subscription failed: %s", store.domain, type(exc).__name__)
        return
    with rt.sessions.begin() as session:
        apply_plan_change(session, store.id, change, datetime.now(UTC))


@bp.get("/billing")
@merchant_required
def billing() -> str:
    store = _billed_store()
    _refresh_shopify(store)
    from recovery.billing.plans import TRIAL_DAYS, trial_days_left
    from recovery.storage import tables as t

    with _runtime().sessions() as session:
        now = datetime.now(UTC)
        current = usage(session, store, now)
        trial = trial_days_left(session.get(t.StoreBilling, store.id), now)  # one trial per store
    return render_template(
        "merchant/billing.html", store=store, usage=current, plans=[PLANS[k] for k in SELF_SERVE],
        enterprise=PLANS["enterprise"], reasons=REASONS, action=_keep_query,
        portal=store.platform == "woocommerce" and current.provider == "stripe",
        trial=trial, full_trial=trial == TRIAL_DAYS, contact=bool(_runtime().settings.operator_email),
    )  # fmt: skip


@bp.post("/billing/subscribe")
@merchant_required
def billing_subscribe() -> Response | tuple[str, int]:
    store = _billed_store()
    plan = request.form.get("plan", "")
    if plan not in SELF_SERVE:
        abort(400, "plan must be one of: " + ", ".join(SELF_SERVE))
    rt = _runtime()
    from recovery.billing.plans import SERVING, trial_days_left
    from recovery.storage import tables as t

    with rt.sessions() as session:
        billing_row = session.get(t.StoreBilling, store.id)
        customer = billing_row.customer_id if billing_row else None
        live_stripe = billing_row is not None and billing_row.provider == "stripe" and billing_row.status in SERVING
        trial = trial_days_left(billing_row, datetime.now(UTC))  # one trial per store, never a new one per change
    if store.platform == "shopify":
        from connectors.shopify.billing import BillingError, create_subscription, embedded_return_url
        from connectors.shopify.tokens import NeedsReauth

        if rt.shopify is None:
            abort(404)
        try:  # Shopify replaces the running subscription with the approved one: never two charges
            url = create_subscription(rt.shopify.quick_admin or rt.shopify.admin, store.domain, plan,
                                      embedded_return_url(store.domain), test=rt.settings.shopify_billing_test,
                                      trial_days=trial)
        except NeedsReauth:  # no usable token: the merchant reconnects first (the status page's button)
            log.info("billing: store %s must reconnect before subscribing", store.id)
            return render_template("merchant/billing_reconnect.html", store=store, plan=PLANS[plan]), 409
        except BillingError as exc:
            log.warning("billing: %s's subscription was refused: %s", store.domain, exc)
            abort(502, "Shopify did not create the subscription; try again")
        # The confirmation page must open in the top window, not inside Shopify admin's frame.
        return render_template("merchant/billing_confirm.html", url=url, plan=PLANS[plan]), 200
    from connectors.woocommerce.billing import StripeBillingError, checkout_url

    if live_stripe:  # a second Checkout would start a second subscription: changes go through the portal
        return _portal(store)
    back = rt.settings.app_url + _keep_query("merchant.billing")
    try:
        url = checkout_url(rt.settings, store.id, plan, back, back, customer, trial_days=trial)
    except StripeBillingError as exc:
        log.warning("billing: checkout for store %s refused: %s", store.id, exc)
        abort(502, "the payment provider did not open a checkout; try again")
    return redirect(url, 303)


@bp.post("/billing/portal")
@merchant_required
def billing_portal() -> Response:
    return _portal(_billed_store())


def _portal(store: Any) -> Response:
    """Stripe's customer portal for the store's own subscription (plan changes, card, cancel)."""
    rt = _runtime()
    from connectors.woocommerce.billing import StripeBillingError, portal_url
    from recovery.storage import tables as t

    with rt.sessions() as session:
        row = session.get(t.StoreBilling, store.id)
        customer = row.customer_id if row and row.provider == "stripe" else None
    if store.platform != "woocommerce" or not customer:
        abort(404)
    try:
        return redirect(portal_url(rt.settings, customer, rt.settings.app_url + _keep_query("merchant.billing")), 303)
    except StripeBillingError as exc:
        log.warning("billing: portal for store %s refused: %s", store.id, exc)
        abort(502, "the payment provider did not open the portal; try again")


@bp.post("/billing/enterprise")
@merchant_required
def billing_enterprise() -> tuple[str, int]:
    """The Enterprise "contact us" form: one email to the operator (CARTRESQ_OPERATOR_EMAIL)."""
    store = _billed_store()
    from app.billing_mail import send_mail

    if not _runtime().settings.operator_email:  # the plan page hides the form then; a stale post gets a page
        return render_template("merchant/billing_sent.html", store=store, unavailable=True,
                               back=_keep_query("merchant.billing")), 503
    email = (request.form.get("email") or "").strip()
    message = (request.form.get("message") or "").strip()
    if not email or "@" not in email or len(email) > 320 or any(c in email for c in "\r\n<>"):
        abort(400, "email: a valid address is needed")
    if not message or len(message) > MAX_MESSAGE:
        abort(400, f"message: 1 to {MAX_MESSAGE} characters")
    rt = _runtime()
    body = f"Enterprise enquiry from store {store.domain} ({store.platform}).\nReply to: {email}\n\n{message}\n"
    send_mail(rt, rt.settings.operator_email, f"CartResQ Enterprise enquiry: {store.domain}", body, reply_to=email)
    log.info("billing: enterprise enquiry from store %s sent to the operator", store.id)
    return render_template("merchant/billing_sent.html", store=store), 200


def visible() -> bool:
    """Whether the menu shows the plan page for the current store."""
    from flask import g

    policy, store = limits(), g.get("store")
    return policy is not None and store is not None and policy.applies(store)


@bp.context_processor
def _billing_context() -> dict[str, object]:
    return {"plan_banner": banner}
