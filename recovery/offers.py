"""Offers: a unique single-use discount code, made just before the message that carries it goes out.

The platform side is a port (`OfferProvider`); Shopify's lives in connectors/shopify/discounts.py. A code
is recorded per message, so a retried send reuses it instead of making another; the restore link of
that message applies it (`/discount/CODE?redirect=...`). Expired unused codes are deleted later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import quote, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery import tables as t
from recovery.store_settings import effective
from recovery.tables import utcnow

log = logging.getLogger(__name__)


class OfferUnavailable(Exception):
    """No code can be made now (no platform access, platform refused): the step falls back to a reminder."""


@dataclass(frozen=True)
class IssuedCode:
    code: str
    platform_id: str | None


class OfferProvider(Protocol):
    def create_code(self, store: t.Store, cart: t.Cart, percent: int, ends_at: datetime) -> IssuedCode:
        """A new single-use code for `percent` % off, valid until `ends_at`; raises OfferUnavailable."""
        ...

    def delete_unused(self, store: t.Store, code: t.DiscountCode) -> str:
        """Delete the code on the platform unless it was used: "deleted" | "used"; raises OfferUnavailable."""
        ...


@dataclass(frozen=True)
class Offer:
    code: str
    percent: int
    ends_at: datetime


def offer_for(
    session: Session, provider: OfferProvider | None, store: t.Store, cart: t.Cart, message: t.RecoveryMessage
) -> Offer | None:
    """The offer for this message, made now if the store offers one; None → send a plain reminder."""
    settings = effective(store.settings or {})
    percent = int(settings["offer_percent"])
    if provider is None or percent <= 0:
        return None
    existing = session.scalar(select(t.DiscountCode).where(t.DiscountCode.message_id == message.id))
    if existing is not None:
        return Offer(existing.code, existing.percent, existing.ends_at)
    ends_at = utcnow() + timedelta(seconds=int(settings["offer_window"]))
    try:
        issued = provider.create_code(store, cart, percent, ends_at)
    except OfferUnavailable as exc:
        log.warning("store %s: no offer for message %s (%s)", store.id, message.id, exc)
        return None
    session.add(
        t.DiscountCode(
            store_id=store.id,
            cart_id=cart.id,
            message_id=message.id,
            code=issued.code,
            platform_id=issued.platform_id,
            percent=percent,
            ends_at=ends_at,
            created_at=utcnow(),
        )
    )
    session.flush()
    return Offer(issued.code, percent, ends_at)


def apply_code(session: Session, message_id: int, url: str | None) -> str | None:
    """The restore URL through the store's `/discount/CODE?redirect=PATH`, when this message has a code."""
    if not url:
        return url
    row = session.scalar(
        select(t.DiscountCode).where(t.DiscountCode.message_id == message_id, t.DiscountCode.deleted_at.is_(None))
    )
    if row is None:
        return url
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"{parts.scheme}://{parts.netloc}/discount/{quote(row.code, safe='')}?redirect={quote(target, safe='')}"


def cleanup_expired(sessions: sessionmaker[Session], provider: OfferProvider, limit: int = 50) -> dict[str, int]:
    """Delete expired codes on the platform (used ones are kept there and only marked here)."""
    counts = {"deleted": 0, "used": 0, "failed": 0}
    with sessions() as session:
        ids = session.scalars(
            select(t.DiscountCode.id)
            .where(t.DiscountCode.deleted_at.is_(None), t.DiscountCode.ends_at < utcnow())
            .order_by(t.DiscountCode.ends_at)
            .limit(limit)
        ).all()
    for code_id in ids:
        with sessions.begin() as session:
            row = session.get(t.DiscountCode, code_id)
            store = session.get(t.Store, row.store_id) if row else None
            if row is None or store is None or row.deleted_at is not None:
                continue
            try:
                outcome = provider.delete_unused(store, row)
            except OfferUnavailable as exc:
                counts["failed"] += 1
                log.info("discount %s not cleaned up yet: %s", code_id, exc)
                continue
            row.deleted_at, row.outcome = utcnow(), outcome
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts
