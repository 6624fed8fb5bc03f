"""What shoppers do with our messages: opens, clicks, unsubscribes. Each is idempotent."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from recovery import tables as t
from recovery.db import insert_for
from recovery.links import LinkTarget
from recovery.tables import utcnow


def _message(session: Session, target: LinkTarget) -> t.RecoveryMessage | None:
    message = session.get(t.RecoveryMessage, target.message_id)
    return message if message is not None and message.cart_id == target.cart_id else None


def record_open(session: Session, target: LinkTarget) -> bool:
    message = _message(session, target)
    if message is None:
        return False
    message.opened_at = message.opened_at or utcnow()
    return True


def record_click(session: Session, target: LinkTarget) -> str | None:
    """Record the click and return where the shopper's cart lives on the platform."""
    message = _message(session, target)
    if message is None:
        return None
    now = utcnow()
    message.clicked_at = message.clicked_at or now
    message.opened_at = message.opened_at or now  # a click proves the open even if images were blocked
    cart = session.get(t.Cart, message.cart_id)
    return cart.restore_url if cart else None


def unsubscribe(session: Session, target: LinkTarget, reason: str = "unsubscribed") -> str | None:
    """Suppress the address for this store's recovery email and cancel what is pending; returns it."""
    message = _message(session, target)
    cart = session.get(t.Cart, message.cart_id) if message else None
    if message is None or cart is None or not cart.email:
        return None
    address = cart.email.strip().lower()
    session.execute(
        insert_for(session.get_bind().dialect.name)(t.Suppression)
        .values(store_id=cart.store_id, channel="email", address=address, reason=reason, created_at=utcnow())
        .on_conflict_do_nothing()
    )
    same_address = session.scalars(
        select(t.Cart.id).where(t.Cart.store_id == cart.store_id, t.Cart.email == address)
    ).all()
    session.execute(
        update(t.RecoveryMessage)
        .where(
            t.RecoveryMessage.cart_id.in_(list(same_address)),
            t.RecoveryMessage.channel == "email",
            t.RecoveryMessage.status.in_(("planned", "queued")),
        )
        .values(status="cancelled", reason="unsubscribed")
        .execution_options(synchronize_session=False)
    )
    return address
