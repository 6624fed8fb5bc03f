"""Messages as the merchant will see them: rendered by the real renderer (recovery.messages.content) with the store's
own words, settings and offer, from the store's most recent cart with items (or the invented sample cart),
and sent to the merchant's own address as a test."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.messages import store_copy
from recovery.storage import tables as t
from recovery.intake.catalog import item_views
from recovery.messages.content import MessageContext, RenderedEmail, render_email, render_sms, sample_context
from recovery.config.store_settings import effective
from recovery.storage.tables import utcnow

PREVIEW_CODE = "PREVIEW-CODE"


@dataclass(frozen=True)
class Preview:
    email: RenderedEmail
    sms: str
    source: str  # what the preview is made from, in words
    offer_note: str | None  # how the offer step will go out, from the store's real setting


def _recent_cart(db: Session, store_id: int) -> t.Cart | None:
    return db.scalar(select(t.Cart).where(t.Cart.store_id == store_id, t.Cart.abandoned_at.is_not(None))
                     .order_by(t.Cart.abandoned_at.desc()).limit(1))


def context(db: Session, store: t.Store, template: str, locale: str,
            own: dict[str, str] | None) -> tuple[MessageContext, str, str | None, str]:
    """(context, source in words, offer note, the template actually rendered)."""
    settings = effective(store.settings or {})
    cart = _recent_cart(db, store.id)
    base = sample_context(locale, store.currency or "USD", None)
    source = "the invented sample cart (this store has no abandoned cart yet)"
    if cart is not None and cart.line_items:
        items = item_views(db, store, cart, None, settings)
        if items:
            base = dataclasses.replace(base, items=items, total=cart.total, currency=cart.currency,
                                       first_name=cart.first_name)
            source = f"your most recent abandoned cart (#{cart.id})"
    percent = int(settings["offer_percent"])
    note, rendered = None, template
    if template == "offer":
        if percent <= 0:
            note = ("Your offer is off (offer percent 0): this step goes out as the first reminder, without a code. "
                    "Set an offer percent on the Flow page.")
            rendered = "gentle_reminder"
        else:
            note = (f"Each shopper gets a single-use code for {percent}% off, valid for "
                    f"{_human(int(settings['offer_window']))} (shown here as {PREVIEW_CODE}).")
    ctx = dataclasses.replace(
        base, store_name=settings["sender_name"] or store.name or store.domain, store_url=f"https://{store.domain}",
        postal_address=settings["postal_address"] or "(no postal address yet: emails are held until you add one)",
        locale=locale, own_copy=own or None,
        offer_code=PREVIEW_CODE if percent > 0 else None, offer_percent=percent if percent > 0 else None,
        offer_expires_at=utcnow() + timedelta(seconds=int(settings["offer_window"])) if percent > 0 else None,
    )
    return ctx, source, note, rendered


def _human(seconds: int) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit if seconds // size != 1 else unit[:-1]}"
    return f"{seconds} seconds"


def preview(db: Session, store: t.Store, template: str, locale: str, own: dict[str, str] | None = None) -> Preview:
    """`own`: the words being edited (unsaved); None: the store's saved words for this language."""
    if own is None:
        own = store_copy.load(db, store.id, store_copy.language_of(locale))
    ctx, source, note, rendered = context(db, store, template, locale, own)
    return Preview(render_email(rendered, ctx), render_sms(rendered, ctx), source, note)


def send_test(db: Session, store: t.Store, to: str, template: str = "gentle_reminder", locale: str = "en-US",
              own: dict[str, str] | None = None) -> None:
    """The email of `template` as the shopper would get it, to the merchant's own address (subject marked)."""
    from app.web.merchant import mail

    shown = preview(db, store, template, locale, own)
    settings = effective(store.settings or {})
    mail.send(to, f"[Test] {shown.email.subject}", shown.email.text, shown.email.html,
              from_name=settings["sender_name"] or store.name or store.domain, reply_to=settings["reply_to"] or None)


def recipient(db: Session, store: t.Store) -> str | None:
    """The merchant's own address: the signed-in account's, else the store's reply-to address."""
    from flask import g

    account = g.get("account")
    if account is not None:
        return str(account.email)
    return effective(store.settings or {})["reply_to"] or None
