"""The setup guide: each step checked off from the store's real state, each with the form that does it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import abort, redirect, render_template, request, url_for
from sqlalchemy import exists, or_, select

from app.web.merchant import bp, samples, settings_form
from app.web.merchant.context import current_store, merchant_required
from recovery.storage import tables as t
from recovery.config.store_settings import effective
from recovery.storage.tables import utcnow

EMBED_HANDLE = "cartresq-embed"  # theme_extension/blocks/cartresq-embed.liquid


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    done: bool
    detail: str


def theme_editor_link(shop: str, api_key: str | None) -> str:
    """Shopify's deep link: the theme editor's App embeds, with ours switched on (saved by the merchant)."""
    return f"https://{shop}/admin/themes/current/editor?context=apps&activateAppId={api_key}/{EMBED_HANDLE}"


def steps(db: Any, store: t.Store) -> list[Step]:
    stored = store.settings or {}
    values = effective(stored)
    tracker_seen = db.scalar(select(or_(
        exists().where(t.TrackEvent.store_id == store.id),
        exists().where(t.Cart.store_id == store.id, t.Cart.tracked_at.is_not(None)))))
    if store.platform == "woocommerce":
        connection = db.scalar(select(t.WooConnection).where(t.WooConnection.store_id == store.id))
        tracker_seen = tracker_seen or bool(connection and connection.plugin_configured_at)
    sms = "on" if values["sms_enabled"] else "off"
    return [
        Step("address", "Postal address", bool(str(values["postal_address"]).strip()),
             "Printed in every email, as the law requires (CAN-SPAM). Without it no email is sent."),
        Step("sender", "Sender name and reply-to address", bool(values["sender_name"] and values["reply_to"]),
             "Who the emails are from, and where shoppers' replies reach you."),
        Step("channels", "Channels", "sms_enabled" in stored,
             f"Email is always on; text messages are {sms} (only to shoppers who agreed to texts)."),
        Step("consent", "Consent policy", "email_consent_policy" in stored,
             "Who may be emailed without having ticked a marketing box."),
        Step("embed", "Storefront tracker", bool(tracker_seen),
             "Sees carts and captured emails on your storefront; checked off once it has reported."),
        Step("test", "Send yourself a test", bool(stored.get("setup_test_sent_at")),
             "The first reminder, as a shopper would get it, to your own address."),
    ]


@bp.get("/setup")
@merchant_required
def setup(errors: dict[str, str] | None = None, status: int = 200) -> Any:
    from app.web import runtime

    store = current_store()
    with runtime().sessions() as db:
        fresh = db.get(t.Store, store.id)
        shown = steps(db, fresh)
        values = effective(fresh.settings or {})
        if errors:  # what was typed stays in the form, next to its error
            values.update({k: v for k, v in request.form.items() if k in values and k != "sms_enabled"})
        recipient = samples.recipient(db, fresh)
    api_key = runtime().settings.shopify_api_key
    return render_template(
        "merchant/setup.html", steps=shown, done=sum(s.done for s in shown), values=values, errors=errors or {},
        recipient=recipient, store=store, deep_link=theme_editor_link(store.domain, api_key)
        if store.platform == "shopify" else None, sent=request.args.get("sent") == "1",
    ), status


_FIELDS = {
    "address": ("postal_address",),
    "sender": ("sender_name", "reply_to"),
    "consent": ("email_consent_policy",),
}


@bp.post("/setup/<step>")
@merchant_required
def setup_step(step: str) -> Any:
    store = current_store()
    if step in _FIELDS:
        values = {key: request.form.get(key, "") for key in _FIELDS[step]}
    elif step == "channels":
        values = {"sms_enabled": "on" if request.form.get("sms_enabled") else "off"}
    elif step == "test":
        return _send_test(store)
    else:
        abort(404, f"no setup step {step!r}")
    _, errors = settings_form.apply(store.id, values)
    if errors:
        return setup(errors, 400)
    return redirect(url_for("merchant.setup", store=request.args.get("store")) + f"#step-{step}", 303)


def _send_test(store: t.Store) -> Any:
    from app.web import runtime
    from app.web.merchant.mail import MailError, refused

    problem = None
    with runtime().sessions.begin() as db:
        fresh = db.get(t.Store, store.id, with_for_update=True)
        to = samples.recipient(db, fresh)
        if not to:
            problem = "Set a reply-to address first: the test goes to your own address."
        elif wait := refused("test", str(store.id)):
            problem = f"Too many test messages this hour: try again in {wait // 60 + 1} min."
        else:
            try:
                samples.send_test(db, fresh, to, request.form.get("template", "gentle_reminder"))
            except (MailError, ValueError) as exc:
                problem = f"The test could not be sent: {exc}"
            else:
                fresh.settings = {**(fresh.settings or {}), "setup_test_sent_at": utcnow().isoformat()}
    if problem:  # the page is drawn after the transaction: SQLite's pool may hold a single connection
        return setup({"test": problem}, 400)
    target = request.form.get("back") == "templates"
    endpoint = "merchant.templates" if target else "merchant.setup"
    return redirect(url_for(endpoint, store=request.args.get("store"), sent=1), 303)
