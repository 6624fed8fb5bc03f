"""Everything re-checked just before a send, for a batch of messages with a fixed number of queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from recovery.intake import bots, subscriptions as push, verify
from recovery.consent import records as consent, pseudonym
from recovery.storage import tables as t
from recovery.intake.catalog import Known, out_of_stock_carts
from recovery.flows import BROWSE, CART, CROSS_SELL, PRICE_DROP, is_flow
from recovery.flows import checks as flow_checks
from recovery.model import CartStatus
from recovery.config.store_settings import effective


@dataclass(frozen=True)
class Candidate:
    message: t.RecoveryMessage
    cart: t.Cart
    store: t.Store


def blocking_reasons(
    session: Session, batch: Sequence[Candidate], known: Known | None = None
) -> dict[int, str]:
    """Message id → the first reason that blocks it. Messages not in the result may be sent.
    `known`: the batch's catalog facts, if the caller loaded them already (catalog.known_variants)."""
    carts = [c.cart for c in batch]
    ordered = _shoppers_who_ordered(session, carts)
    suppressed = _suppressed(session, carts)
    holdout = set(
        session.scalars(
            select(t.ExperimentAssignment.cart_id).where(
                t.ExperimentAssignment.cart_id.in_([c.id for c in carts]),
                t.ExperimentAssignment.experiment == "holdout",
                t.ExperimentAssignment.variant == "holdout",
            )
        )
    )
    # Only what the batch's channels need is asked (a batch of emails: no SMS consent, no push subscription),
    # and nothing for an empty set: each query is a round trip for every batch.
    customer_ids = {c.cart.customer_id for c in batch if c.message.channel == "sms" and c.cart.customer_id}
    sms_consent = set(
        session.scalars(select(t.Customer.id).where(t.Customer.id.in_(customer_ids), t.Customer.sms_consent.is_(True)))
    ) if customer_ids else set()  # fmt: skip
    out_of_stock = out_of_stock_carts(session, carts, known)
    unconfirmed = verify.unconfirmed_carts(session, carts)  # tracker carts: content only from the platform
    subscribed = push.carts_with_subscription(session, [c.cart.id for c in batch if c.message.channel == "push"])
    reasons: dict[int, str] = {}
    # A triggered flow's message (recovery/flows) has its own rules for the cart, orders and holdout.
    flows = [c for c in batch if is_flow(c.message.flow)]
    flow_reasons = flow_checks.reasons(session, flows, ordered) if flows else {}
    for candidate in batch:
        message, cart, store = candidate.message, candidate.cart, candidate.store
        address = _address(message.channel, cart, subscribed)
        flow = is_flow(message.flow)
        if not store.active:
            reasons[message.id] = "store uninstalled"
        elif flow and message.id in flow_reasons:
            reasons[message.id] = flow_reasons[message.id]
        elif not flow and cart.status != CartStatus.ABANDONED.value:
            reasons[message.id] = f"cart is {cart.status}"
        elif not address:
            reasons[message.id] = "no_push_subscription" if message.channel == "push" else f"no {message.channel} address"
        elif not flow and cart.id in ordered:
            reasons[message.id] = "shopper ordered"
        elif (store.id, message.channel, address.strip().lower()) in suppressed:
            reasons[message.id] = "address suppressed"
        elif message.channel == "sms" and not (cart.accepts_sms or cart.customer_id in sms_consent):
            reasons[message.id] = "no SMS consent"
        elif not flow and cart.id in holdout:  # a flow drew its own holdout when it fired
            reasons[message.id] = "holdout"
        elif cart.id in out_of_stock and message.flow in (CART, PRICE_DROP):  # a reminder could only disappoint
            reasons[message.id] = "out_of_stock"
        elif cart.id in unconfirmed and message.flow not in (CROSS_SELL, BROWSE):  # a tracker cart none of whose lines the platform confirmed
            reasons[message.id] = "items_not_confirmed"
    reasons.update(_consent_and_bots(session, [c for c in batch if c.message.id not in reasons]))
    return reasons


def _address(channel: str, cart: t.Cart, subscribed: set[int]) -> str:
    """A push message's address is the browser subscription, not a phone or an email."""
    if channel == "push":
        return "push" if cart.id in subscribed else ""
    return (cart.email if channel == "email" else cart.phone) or ""


def _consent_and_bots(session: Session, batch: Sequence[Candidate]) -> dict[int, str]:
    """The store's consent policy and bot carts (recovery/consent/records.py, recovery/intake/bots.py): two queries."""
    if not batch:
        return {}
    customer_ids = {c.cart.customer_id for c in batch if c.cart.customer_id}
    customers = {c.id: c for c in session.scalars(select(t.Customer).where(t.Customer.id.in_(customer_ids)))} if customer_ids else {}
    records = consent.latest(session, [c.cart for c in batch])
    reasons: dict[int, str] = {}
    for candidate in batch:
        message, cart, store = candidate.message, candidate.cart, candidate.store
        customer = customers.get(cart.customer_id or 0)
        address = consent.normalize("email" if message.channel == "email" else "sms", cart.email if message.channel == "email" else cart.phone)
        record = records.get((store.id, message.channel, address or ""))
        bot = bots.cart_reason(cart)
        if bot:
            reasons[message.id] = f"bot:{bot}"
        elif message.channel == "email":
            settings = effective(store.settings or {})
            # CAN-SPAM: every commercial email carries a valid postal address; without one we send none.
            blocked = consent.email_block(settings["email_consent_policy"], cart, customer, record)
            if not str(settings["postal_address"] or "").strip():
                reasons[message.id] = "missing_postal_address"
            elif blocked:
                reasons[message.id] = blocked
        elif message.channel == "sms" and not consent.sms_allowed(cart, customer, record):
            reasons[message.id] = "no SMS consent"
    return reasons


def _shoppers_who_ordered(session: Session, carts: Sequence[t.Cart]) -> set[int]:
    """Carts whose shopper (same cart, customer, email or phone) ordered since the cart's last activity."""
    emails = {c.email for c in carts if c.email}
    phones = {c.phone for c in carts if c.phone}
    customers = {c.customer_id for c in carts if c.customer_id}
    orders = session.execute(
        select(t.Order.store_id, t.Order.cart_id, t.Order.customer_id, t.Order.email, t.Order.phone, t.Order.placed_at)
        .where(
            t.Order.store_id.in_({c.store_id for c in carts}),
            t.Order.cancelled_at.is_(None),
            t.Order.placed_at >= min(c.last_activity_at for c in carts),
            or_(
                t.Order.cart_id.in_([c.id for c in carts]),
                t.Order.customer_id.in_(customers),
                t.Order.email.in_(emails),
                t.Order.phone.in_(phones),
            ),
        )
    ).all()
    found = set()
    for cart in carts:
        for order in orders:
            same = (
                order.cart_id == cart.id
                or (cart.customer_id and order.customer_id == cart.customer_id)
                or (cart.email and order.email == cart.email)
                or (cart.phone and order.phone == cart.phone)
            )
            if same and order.store_id == cart.store_id and order.placed_at >= cart.last_activity_at:
                found.add(cart.id)
    return found


def _suppressed(session: Session, carts: Sequence[t.Cart]) -> set[tuple[int, str, str]]:
    """(store, channel, address) suppressed, whether kept in clear or, after a redaction, as its keyed hash."""
    wanted = {(c.store_id, a.strip().lower()) for c in carts for a in (c.email, c.phone) if a}
    key = pseudonym.session_key(session)
    hashed: dict[str, str] = {}
    if key:  # a redacted shopper's phone was kept in its E.164 form too
        for cart in carts:
            for channel, raw in (("email", cart.email), ("sms", cart.phone)):
                if raw:
                    for form in {raw.strip().lower(), consent.normalize(channel, raw) or ""} - {""}:
                        hashed[pseudonym.pseudonym(key, cart.store_id, form)] = raw.strip().lower()
    rows = session.execute(
        select(t.Suppression.store_id, t.Suppression.channel, t.Suppression.address).where(
            t.Suppression.store_id.in_({s for s, _ in wanted}),
            t.Suppression.address.in_({a for _, a in wanted} | set(hashed)),
        )
    ).all()
    return {(row.store_id, row.channel, hashed.get(row.address, row.address)) for row in rows}
