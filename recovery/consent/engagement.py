"""What shoppers do with our messages: opens, clicks, unsubscribes. Each is idempotent."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from recovery.storage import tables as t
from recovery.storage.db import insert_for
from recovery.messages.links import LinkTarget
from recovery.storage.tables import utcnow


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


def own_domain(session: Session, store_id: int, url: str | None) -> str | None:
    """`url` when it is on one of the store's own domains (its platform domain, the storefront domains it
    allows as tracker origins, a WooCommerce store's URL), else the store's home page: a restore link never
    sends a shopper anywhere else, whatever a payload or a beacon put into the cart."""
    from recovery.intake.origins import allowed_origins, normalize_origin

    store = session.get(t.Store, store_id)
    if store is None:
        return None
    woo_url = session.scalar(select(t.WooConnection.store_url).where(t.WooConnection.store_id == store_id))
    home = (woo_url or f"https://{store.domain}").rstrip("/") + "/"
    if not url:
        return home
    try:
        parts = urlsplit(url)
        origin = normalize_origin(f"{parts.scheme}://{parts.netloc}") if parts.netloc and not parts.username else None
    except ValueError:
        return home
    own = allowed_origins(store) | ({normalize_origin(woo_url)} if woo_url else set())
    if woo_url:  # a store in a folder: its URL is scheme://host/path; its origin is what counts
        woo_parts = urlsplit(woo_url)
        own.add(normalize_origin(f"{woo_parts.scheme}://{woo_parts.netloc}"))
    return url if origin is not None and origin in own else home


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
