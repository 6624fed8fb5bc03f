"""Privacy requests and uninstalls: export, redact a customer, erase a shop, stop work for a shop."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from recovery.consent import records as consent, pseudonym, redaction
from recovery.storage import tables as t
from recovery.sequence.plan import cancel_pending
from recovery.storage.db import insert_for
from recovery.model import ConsentChanged, CustomerRef
from recovery.storage.tables import utcnow


def _same_contact(model: Any, ref: CustomerRef) -> list[Any]:
    """Rows of `model` (customers, carts, orders) with the reference's email or phone."""
    return [column == value for column, value in ((model.email, ref.email), (model.phone, ref.phone)) if value]


def _customers(session: Session, store_id: int, ref: CustomerRef) -> list[t.Customer]:
    clauses = _same_contact(t.Customer, ref)
    if ref.platform_customer_id:
        clauses.append(t.Customer.platform_customer_id == ref.platform_customer_id)
    if not clauses:
        return []
    return list(session.scalars(select(t.Customer).where(t.Customer.store_id == store_id, or_(*clauses))))


def _carts(session: Session, store_id: int, ref: CustomerRef, customer_ids: list[int]) -> list[t.Cart]:
    clauses = _same_contact(t.Cart, ref) + ([t.Cart.customer_id.in_(customer_ids)] if customer_ids else [])
    if not clauses:
        return []
    return list(session.scalars(select(t.Cart).where(t.Cart.store_id == store_id, or_(*clauses))))


def _orders(session: Session, store_id: int, ref: CustomerRef, customer_ids: list[int], cart_ids: list[int]) -> list[t.Order]:
    clauses = [t.Order.customer_id.in_(customer_ids), t.Order.cart_id.in_(cart_ids), *_same_contact(t.Order, ref)]
    return list(session.scalars(select(t.Order).where(t.Order.store_id == store_id, or_(*clauses))))


def apply_consent(session: Session, store: t.Store, change: ConsentChanged) -> str:
    """Consent given or withdrawn on the platform takes effect on what is pending, at once."""
    customers = _customers(session, store.id, change.customer)
    # Shopify retries the original payload for hours: an older consent record never overrides a newer one.
    newest = max((at for c in customers for at in (c.email_consent_at, c.sms_consent_at) if at), default=None)
    if newest is not None and newest > change.updated_at:
        return "stale: a newer consent is stored"
    carts = _carts(session, store.id, change.customer, [c.id for c in customers])
    for channel, given in (("email", change.email), ("sms", change.sms)):
        if given is not None:  # the consent record of the send policy (recovery/consent/records.py)
            consent.record(
                session, store.id, channel, change.customer.email if channel == "email" else change.customer.phone,
                granted=given, basis="explicit_opt_in" if given else "withdrawn", source="customers_update",
                at=change.updated_at, customer_id=customers[0].id if customers else None,
            )
    for customer in customers:
        if change.email is not None:
            customer.email_consent, customer.email_consent_source = change.email, "platform"
            customer.email_consent_at = change.updated_at
        if change.sms is not None:
            customer.sms_consent, customer.sms_consent_source = change.sms, "platform"
            customer.sms_consent_at = change.updated_at
    withdrawn = [channel for channel, given in (("email", change.email), ("sms", change.sms)) if given is False]
    for channel in [c for c, given in (("email", change.email), ("sms", change.sms)) if given is True]:
        # Opting in again on the platform lifts only the suppression the platform's opt-out put there.
        address = ((change.customer.email if channel == "email" else change.customer.phone) or "").strip().lower()
        key = pseudonym.session_key(session)  # a redacted shopper's opt-out is kept hashed
        forms = [address] + ([pseudonym.pseudonym(key, store.id, address)] if key and address else [])
        session.execute(
            delete(t.Suppression).where(
                t.Suppression.store_id == store.id, t.Suppression.channel == channel,
                t.Suppression.address.in_(forms),
                t.Suppression.reason.in_(("withdrawn on platform", redaction.WITHDRAWN)),
            )
        )
    for channel in withdrawn:
        address = change.customer.email if channel == "email" else change.customer.phone
        if address:
            session.execute(
                insert_for(session.get_bind().dialect.name)(t.Suppression)
                .values(store_id=store.id, channel=channel, address=address.strip().lower(),
                        reason="withdrawn on platform", created_at=utcnow())
                .on_conflict_do_nothing()
            )
        if channel == "sms":
            for cart in carts:
                cart.accepts_sms = False  # the checkout's tick no longer stands
        session.execute(
            update(t.RecoveryMessage)
            .where(t.RecoveryMessage.cart_id.in_([c.id for c in carts]), t.RecoveryMessage.channel == channel,
                   t.RecoveryMessage.status.in_(("planned", "queued")))
            .values(status="cancelled", reason="consent withdrawn")
            .execution_options(synchronize_session=False)
        )
    return f"consent updated ({', '.join(withdrawn) or 'nothing'} withdrawn)"


def export_customer(session: Session, store: t.Store, ref: CustomerRef, request_id: str) -> str:
    """Everything held about the customer, stored for the merchant as one JSON document."""
    customers = _customers(session, store.id, ref)
    carts = _carts(session, store.id, ref, [c.id for c in customers])
    orders = _orders(session, store.id, ref, [c.id for c in customers], [c.id for c in carts])
    messages = session.scalars(
        select(t.RecoveryMessage).where(t.RecoveryMessage.cart_id.in_([c.id for c in carts]))
    ).all()
    document: dict[str, Any] = {
        "customers": [_row(c, ("platform_customer_id", "email", "phone", "first_name", "last_name", "locale", "country",
                               "orders_count", "email_consent", "email_consent_source", "email_consent_at",
                               "sms_consent", "sms_consent_source", "sms_consent_at")) for c in customers],
        "carts": [_row(c, ("id", "email", "phone", "first_name", "locale", "country", "line_items", "currency",
                           "total", "status", "last_activity_at", "abandoned_at", "completed_at")) for c in carts],
        "orders": [_row(o, ("platform_order_id", "email", "phone", "currency", "total", "placed_at", "attribution"))
                   for o in orders],
        "messages": [_row(m, ("cart_id", "step", "channel", "template", "status", "sent_at", "opened_at",
                              "clicked_at")) for m in messages],
    }
    session.add(t.DataExport(store_id=store.id, request_id=request_id, document=document))
    return f"exported {len(customers)} customers, {len(carts)} carts, {len(orders)} orders"


def redact_customer(session: Session, store: t.Store, ref: CustomerRef) -> str:
    """Erase the customer's personal data; carts and orders stay only as anonymous figures."""
    customers = _customers(session, store.id, ref)
    carts = _carts(session, store.id, ref, [c.id for c in customers])
    orders = _orders(session, store.id, ref, [c.id for c in customers], [c.id for c in carts])
    cancel_pending(session, [c.id for c in carts], "customer data redacted")
    known = [(ref.email, ref.phone)] + [(r.email, r.phone) for rows in (customers, carts, orders) for r in rows]
    addresses = {form for email, phone in known for channel, raw in (("email", email), ("sms", phone)) if raw
                 for form in (raw.strip().lower(), consent.normalize(channel, raw))}
    # Consents, ledger, track events, push subscriptions, exports; opt-outs kept as keyed hashes.
    redaction.erase_traces(session, store.id, addresses - {None}, carts, [c.id for c in customers])  # type: ignore[arg-type]
    for cart in carts:
        cart.customer_id = None
        cart.email = cart.phone = cart.first_name = cart.restore_url = None
        cart.checkout_token = cart.cart_token = cart.province = None
    for order in orders:
        order.customer_id, order.email, order.phone = None, None, None
    for customer in customers:
        session.delete(customer)
    # Raw payloads could name the customer; none is needed once processed (unprocessed ones are still work).
    session.execute(
        update(t.WebhookDelivery)
        .where(t.WebhookDelivery.store_id == store.id, t.WebhookDelivery.processed_at.is_not(None))
        .values(payload=None)
        .execution_options(synchronize_session=False)
    )
    return f"redacted {len(customers)} customers, {len(carts)} carts, {len(orders)} orders"


def erase_shop(session: Session, store: t.Store) -> str:
    """Everything of the shop goes: every table's rows cascade from the store."""
    session.execute(delete(t.WebhookDelivery).where(t.WebhookDelivery.shop == store.domain))
    session.execute(delete(t.Store).where(t.Store.id == store.id))
    return "shop erased"


def uninstall(session: Session, store: t.Store) -> str:
    """Idempotent: a second delivery, or one after the shop is gone, changes nothing more."""
    if store.uninstalled_at is not None:
        return "already uninstalled"
    store.uninstalled_at, store.credentials = utcnow(), None
    cart_ids = list(session.scalars(select(t.Cart.id).where(t.Cart.store_id == store.id)))
    cancelled = cancel_pending(session, cart_ids, "store uninstalled")
    return f"uninstalled, {cancelled} messages cancelled"


def _row(obj: object, fields: tuple[str, ...]) -> dict[str, Any]:
    values = {name: getattr(obj, name) for name in fields}
    return {k: (v.isoformat() if hasattr(v, "isoformat") else str(v) if k == "total" else v) for k, v in values.items()}
