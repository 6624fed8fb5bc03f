"""Content comes from the platform, never from a beacon.

A cart whose line items came from the storefront tracker (a cart only the tracker described, or a beacon
newer than what the platform last said) is messaged only with lines the platform confirms: title, price,
image and URL are looked up by variant (or product) id through the store's platform (`CatalogLookup`:
Shopify Admin API, WooCommerce REST) and cached in `verified_items`. The beacon contributes only which
ids and how many of each; a line the platform does not confirm is left out, and a cart with no confirmed
line is not messaged (recovery/sending/checks.py). Prices are the platform's, in the shop's currency.

The lookups are made by `prepare`, before the send transaction opens (like offer codes), so no row lock
is held during a platform call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from recovery.storage import tables as t
from recovery.messages.content import ItemView

log = logging.getLogger(__name__)

#: platform_updated_at of a cart only the tracker has described (recovery.intake.tracking.NO_PLATFORM_STATE).
NO_PLATFORM_STATE = datetime(1970, 1, 1, tzinfo=UTC)
#: How long a lookup answer is reused: found items, and items the platform said it does not have.
FRESH = timedelta(hours=1)
MISSING_FRESH = timedelta(minutes=10)
#: A confirmed row older than this is not shown even when a new lookup failed.
USABLE = timedelta(days=1)
#: Quantities shown for a tracker line are capped: the beacon says how many, nothing more.
MAX_QUANTITY = 99


@dataclass(frozen=True)
class LineRef:
    """One tracker line to confirm: `key` is the variant id, or the product id when it names no variant."""

    key: str
    variant_id: str | None
    product_id: str | None


@dataclass(frozen=True)
class PlatformItem:
    """What the platform says a line is."""

    title: str
    price: Decimal
    currency: str
    product_id: str | None = None
    variant_title: str | None = None
    image_url: str | None = None
    url: str | None = None


class LookupUnavailable(Exception):
    """The platform could not be asked (no access, timeout): nothing is cached, nothing is confirmed."""


class CatalogLookup(Protocol):
    def lookup(self, store: t.Store, lines: Sequence[LineRef]) -> dict[str, PlatformItem]:
        """key → the platform's item; keys left out are items the platform does not have.
        Raises LookupUnavailable when it cannot tell."""
        ...


def from_tracker(cart: t.Cart) -> bool:
    """The cart's lines are the tracker's word: no platform state, or a beacon newer than it."""
    if cart.platform_updated_at is None or cart.platform_updated_at <= NO_PLATFORM_STATE:
        return True  # no platform state (or none recorded): the lines are the tracker's
    return cart.tracked_at is not None and cart.tracked_at > cart.platform_updated_at


#: `from_tracker` in SQL (keep the two alike): a batch's carts the platform described are not even loaded
#: (most of a send batch).
_FROM_TRACKER = or_(
    t.Cart.platform_updated_at.is_(None), t.Cart.platform_updated_at <= NO_PLATFORM_STATE,
    and_(t.Cart.tracked_at.is_not(None), t.Cart.tracked_at > t.Cart.platform_updated_at),
)


def line_refs(cart: t.Cart) -> list[LineRef]:
    refs: dict[str, LineRef] = {}
    for item in cart.line_items or ():
        variant, product = item.get("variant_id"), item.get("product_id")
        key = str(variant or product or "")
        if key and int(item.get("quantity") or 0) > 0:
            refs.setdefault(key, LineRef(key, str(variant) if variant else None, str(product) if product else None))
    return list(refs.values())


def prepare(
    sessions: sessionmaker[Session], lookup: CatalogLookup | None, message_ids: Sequence[int],
    now: datetime | None = None,
) -> int:
    """Confirm the lines of the tracker carts these queued messages are for; returns how many items were
    looked up. Fresh cached answers are reused; a failed lookup leaves the cache as it was."""
    if lookup is None or not message_ids:
        return 0
    now = now or datetime.now(UTC)
    with sessions() as session:
        rows = session.execute(
            select(t.Cart, t.Store)
            .join(t.RecoveryMessage, t.RecoveryMessage.cart_id == t.Cart.id)
            .join(t.Store, t.Store.id == t.Cart.store_id)
            .where(t.RecoveryMessage.id.in_(list(message_ids)), t.RecoveryMessage.status == "queued", _FROM_TRACKER)
        ).unique().all()
        wanted: dict[int, tuple[t.Store, dict[str, LineRef]]] = {}
        for cart, store in rows:  # from_tracker, in the query
            wanted.setdefault(store.id, (store, {}))[1].update({r.key: r for r in line_refs(cart)})
        stale = {store_id: (store, _stale(session, store_id, refs, now)) for store_id, (store, refs) in wanted.items()}
        session.expunge_all()
    looked = 0
    for store_id, (store, refs) in stale.items():
        if not refs:
            continue
        try:
            found = lookup.lookup(store, refs)
        except LookupUnavailable as exc:
            log.warning("store %s: cart lines not confirmed (%s)", store_id, exc)
            continue
        _record(sessions, store_id, refs, found, now)
        looked += len(refs)
    return looked


def _stale(session: Session, store_id: int, refs: dict[str, LineRef], now: datetime) -> list[LineRef]:
    cached = {
        row.item_key: row
        for row in session.scalars(
            select(t.VerifiedItem).where(t.VerifiedItem.store_id == store_id, t.VerifiedItem.item_key.in_(list(refs)))
        )
    }
    out = []
    for key, ref in refs.items():
        row = cached.get(key)
        if row is None or now - row.checked_at >= (FRESH if row.found else MISSING_FRESH):
            out.append(ref)
    return out


def _record(
    sessions: sessionmaker[Session], store_id: int, refs: Sequence[LineRef], found: dict[str, PlatformItem],
    now: datetime,
) -> None:
    try:
        with sessions.begin() as session:
            rows = {
                row.item_key: row
                for row in session.scalars(
                    select(t.VerifiedItem)
                    .where(t.VerifiedItem.store_id == store_id, t.VerifiedItem.item_key.in_([r.key for r in refs]))
                    .with_for_update()
                )
            }
            for ref in refs:
                row = rows.get(ref.key)
                if row is None:
                    row = t.VerifiedItem(store_id=store_id, item_key=ref.key)
                    session.add(row)
                item = found.get(ref.key)
                row.found, row.checked_at = item is not None, now
                row.product_id = item.product_id if item else None
                row.title = item.title[:255] if item else None
                row.variant_title = (item.variant_title or None) and item.variant_title[:255] if item else None
                row.price, row.currency = (item.price, item.currency) if item else (None, None)
                row.image_url = _https(item.image_url) if item else None
                row.url = _https(item.url) if item else None
    except IntegrityError:  # a concurrent send job recorded the same items first: theirs will do
        log.info("store %s: confirmed items recorded concurrently", store_id)


def _https(url: str | None) -> str | None:
    return url if url and url.startswith("https://") and len(url) <= 2048 else None


@dataclass(frozen=True)
class Confirmed:
    """A tracker cart's message content: confirmed lines only, their total and currency."""

    items: tuple[ItemView, ...]
    total: Decimal
    currency: str | None


def _keys(cart: t.Cart) -> set[str]:
    lines = [i for i in cart.line_items or () if int(i.get("quantity") or 0) > 0]
    return {str(i.get("variant_id") or i.get("product_id") or "") for i in lines} - {""}


def _usable(session: Session, carts: Sequence[t.Cart], now: datetime) -> dict[tuple[int, str], t.VerifiedItem]:
    """The confirmed rows for these carts' lines: one query however many carts."""
    keys = {k for c in carts for k in _keys(c)}
    if not keys:
        return {}
    rows = session.scalars(
        select(t.VerifiedItem).where(
            t.VerifiedItem.store_id.in_({c.store_id for c in carts}),
            t.VerifiedItem.item_key.in_(list(keys)),
            t.VerifiedItem.found.is_(True),
            t.VerifiedItem.checked_at > now - USABLE,
        )
    )
    return {(row.store_id, row.item_key): row for row in rows}


def confirmed(
    session: Session, cart: t.Cart, now: datetime | None = None,
    rows: dict[tuple[int, str], t.VerifiedItem] | None = None,
) -> Confirmed:
    """The cart's lines the platform confirmed, at its prices; `rows` from `_usable` when batched."""
    now = now or datetime.now(UTC)
    rows = _usable(session, [cart], now) if rows is None else rows
    views, total, currency = [], Decimal(0), None
    for item in cart.line_items or ():
        if int(item.get("quantity") or 0) <= 0:
            continue
        row = rows.get((cart.store_id, str(item.get("variant_id") or item.get("product_id") or "")))
        if row is None or row.price is None or not row.title:
            continue  # not confirmed by the platform: not shown
        if currency is not None and row.currency != currency:
            continue  # one message, one currency
        currency = row.currency
        quantity = min(int(item["quantity"]), MAX_QUANTITY)
        views.append(ItemView(row.title, row.variant_title, quantity, row.price, image_url=row.image_url))
        total += row.price * quantity
    return Confirmed(tuple(views), total, currency)


def unconfirmed_carts(session: Session, carts: Sequence[t.Cart], now: datetime | None = None) -> set[int]:
    """The tracker carts of these with no line the platform confirmed: they are not messaged."""
    tracker = [c for c in carts if from_tracker(c)]
    rows = _usable(session, tracker, now or datetime.now(UTC))
    return {c.id for c in tracker if not confirmed(session, c, now, rows).items}
