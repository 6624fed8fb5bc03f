"""Finding and filling the rows intake writes: a cart by its tokens (row-locked), a customer by platform id or
email (created when new), and a payload's values copied without erasing what a payload leaves out."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recovery.model import CartStatus, Contact, strip_token
from recovery.storage import tables as t

#: A cart that may still be bought, abandoned or not.
OPEN = (CartStatus.ACTIVE.value, CartStatus.ABANDONED.value)


def find_cart(
    session: Session,
    store_id: int,
    checkout_token: str | None,
    cart_token: str | None,
    by_cart_token_only_if_open: bool = True,
) -> t.Cart | None:
    """By checkout token first, then by cart token (opaque, `?key=` stripped); row-locked on PostgreSQL."""
    base = select(t.Cart).where(t.Cart.store_id == store_id).with_for_update()
    if checkout_token:
        cart = session.scalar(base.where(t.Cart.checkout_token == checkout_token))
        if cart is not None:
            return cart
    token = strip_token(cart_token)
    if token:
        query = base.where(t.Cart.cart_token == token)
        if checkout_token and by_cart_token_only_if_open:
            # A tracker cart without checkout yet joins its checkout; a different checkout never merges.
            query = query.where(t.Cart.checkout_token.is_(None))
        return session.scalar(query)
    return None


def upsert_customer(session: Session, store_id: int, c: Contact, at: datetime) -> int | None:
    if not (c.platform_customer_id or c.email or c.phone):
        return None
    in_store = select(t.Customer).where(t.Customer.store_id == store_id)
    customer = None
    if c.platform_customer_id:
        customer = session.scalar(in_store.where(t.Customer.platform_customer_id == c.platform_customer_id))
    if customer is None and c.email:
        # A guest's row (no platform id yet) is the same shopper; another account's row is not.
        same_email = in_store.where(t.Customer.email == c.email)
        if c.platform_customer_id:
            same_email = same_email.where(t.Customer.platform_customer_id.is_(None))
        customer = session.scalars(same_email.order_by(t.Customer.id).limit(1)).first()
    if customer is None:
        customer = t.Customer(
            store_id=store_id, platform_customer_id=c.platform_customer_id, email_consent=False, sms_consent=False,
            orders_count=0,
        )
        try:
            with session.begin_nested():
                session.add(customer)
        except IntegrityError:
            # Another worker created this customer between our read and our insert.
            customer = session.scalars(in_store.where(t.Customer.platform_customer_id == c.platform_customer_id)).one()
    fill(
        customer,
        platform_customer_id=c.platform_customer_id,
        email=c.email,
        phone=c.phone,
        first_name=c.first_name,
        last_name=c.last_name,
        locale=c.locale,
        country=c.country,
    )
    if c.orders_count is not None:
        customer.orders_count = c.orders_count
    # A checkbox left unticked is not a withdrawal: only an opt-in is recorded here.
    if c.accepts_email and not customer.email_consent:
        customer.email_consent, customer.email_consent_source, customer.email_consent_at = True, "checkout", at
    if c.accepts_sms and not customer.sms_consent:
        customer.sms_consent, customer.sms_consent_source, customer.sms_consent_at = True, "checkout", at
    session.flush()
    return customer.id


def fill(row: object, **values: object) -> None:
    """Copy the values a payload carries; a field it leaves out never erases what we know."""
    for name, value in values.items():
        if value:
            setattr(row, name, value)
