"""Consent records (latest wins per store × channel × address) and the store's regional email policy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.storage import tables as t
from recovery.storage.db import insert_for

BASES = ("explicit_opt_in", "double_opt_in", "existing_customer", "checkout_email", "withdrawn")
SOURCES = ("shopify_checkout", "customers_update", "tracker", "sms_keyword", "unsubscribe", "merchant")
POLICIES = ("regional", "opt_in_only", "any_checkout_email")
#: Prior consent (or the PECR-style soft opt-in of existing customers) required: EU, EEA and the UK.
PRIOR_CONSENT_COUNTRIES = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO GB".split()
)


@dataclass(frozen=True)
class Record:
    granted: bool
    basis: str
    recorded_at: datetime


def normalize(channel: str, address: str | None) -> str | None:
    """Lower-cased email; E.164 phone (as given when it cannot be parsed)."""
    if not address or not address.strip():
        return None
    if channel == "email":
        return address.strip().lower()
    try:
        return phonenumbers.format_number(phonenumbers.parse(address, None), phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        return address.strip()


def record(
    session: Session, store_id: int, channel: str, address: str | None, *, granted: bool, basis: str, source: str,
    at: datetime, customer_id: int | None = None,
) -> bool:
    """Upsert one consent; an older `at` never overrides a newer record. False when there is no address."""
    assert basis in BASES and source in SOURCES, (basis, source)
    normalized = normalize(channel, address)
    if normalized is None:
        return False
    insert = insert_for(session.get_bind().dialect.name)(t.Consent)
    values = dict(store_id=store_id, channel=channel, address=normalized, customer_id=customer_id, granted=granted,
                  basis=basis, source=source, recorded_at=at)
    statement = insert.values(**values).on_conflict_do_update(
        index_elements=["store_id", "channel", "address"],
        set_={k: insert.excluded[k] for k in ("granted", "basis", "source", "recorded_at")}
        | {"customer_id": insert.excluded.customer_id if customer_id else t.Consent.customer_id},
        where=t.Consent.recorded_at <= insert.excluded.recorded_at,
    )
    session.execute(statement)
    return True


def record_opt_ins(session: Session, store_id: int, cart: t.Cart, accepts_email: bool, accepts_sms: bool,
                   at: datetime) -> None:
    """A ticked checkout box is an explicit opt-in; an unticked one withdraws nothing."""
    source = "tracker" if cart.source == "tracker" else "shopify_checkout"
    if accepts_email:
        record(session, store_id, "email", cart.email, granted=True, basis="explicit_opt_in", source=source, at=at,
               customer_id=cart.customer_id)
    if accepts_sms:
        record(session, store_id, "sms", cart.phone, granted=True, basis="explicit_opt_in", source=source, at=at,
               customer_id=cart.customer_id)


def latest(session: Session, carts: Iterable[t.Cart]) -> dict[tuple[int, str, str], Record]:
    """(store, channel, normalized address) → its consent record, for a batch of carts in one query."""
    wanted = {(c.store_id, ch, a) for c in carts for ch, raw in (("email", c.email), ("sms", c.phone))
              if (a := normalize(ch, raw))}
    if not wanted:
        return {}
    rows = session.execute(
        select(t.Consent.store_id, t.Consent.channel, t.Consent.address, t.Consent.granted, t.Consent.basis,
               t.Consent.recorded_at).where(
            t.Consent.store_id.in_({s for s, _, _ in wanted}), t.Consent.address.in_({a for _, _, a in wanted})
        )
    ).all()
    return {(r.store_id, r.channel, r.address): Record(r.granted, r.basis, r.recorded_at) for r in rows}


def shopper_country(cart: t.Cart) -> str | None:
    """The address's country, else the phone number's."""
    if cart.country:
        return cart.country.upper()
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(cart.phone or "", None)) or None
    except phonenumbers.NumberParseException:
        return None


def email_block(policy: str, cart: t.Cart, customer: t.Customer | None, rec: Record | None) -> str | None:
    """Why the store's email policy forbids this recovery email, or None."""
    if rec is not None and not rec.granted:
        return "email_consent_withdrawn"
    subscribed = (rec is not None and rec.basis != "checkout_email") or cart.accepts_email or bool(
        customer and customer.email_consent
    )
    if subscribed or policy == "any_checkout_email":
        return None
    if policy == "opt_in_only":
        return "no_email_consent"
    country = shopper_country(cart)
    existing_customer = bool(customer and customer.orders_count > 0)  # the soft opt-in
    if country in PRIOR_CONSENT_COUNTRIES and not existing_customer:
        return f"no_email_consent_region_{country}"
    return None


def sms_allowed(cart: t.Cart, customer: t.Customer | None, rec: Record | None) -> bool:
    """Only with recorded SMS consent; a record, when there is one, is the latest word."""
    if rec is not None:
        return rec.granted
    return bool(cart.accepts_sms or (customer and customer.sms_consent))


def on_snapshot(session: Session, store_id: int, cart: t.Cart, snap: Any) -> None:
    """Ingest hook (recovery/intake/carts.py): the checkout's ticked boxes become consent records, and a bot's cart
    is marked so it is kept but never messaged."""
    from recovery.intake import bots

    record_opt_ins(session, store_id, cart, snap.contact.accepts_email, snap.contact.accepts_sms, snap.updated_at)
    reason = bots.classify(cart.email, getattr(snap, "user_agent", None))
    if reason and not cart.bot_reason:
        cart.bot_reason = reason
