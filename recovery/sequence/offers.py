"""Offers: a unique single-use discount code, made just before the message that carries it goes out.

The platform side is a port (`OfferProvider`); Shopify's lives in connectors/shopify/discounts.py. A code
is recorded per message, so a retried send reuses it instead of making another; the restore link of
that message applies it (`/discount/CODE?redirect=...`). Expired unused codes are deleted later.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import quote, urlsplit

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from recovery.storage import tables as t
from recovery.sequence.discount_arms import offer_percent
from recovery.config.store_settings import effective
from recovery.storage.tables import utcnow

log = logging.getLogger(__name__)


class OfferUnavailable(Exception):
    """No code can be made now (no platform access, platform refused): the step falls back to a reminder."""


@dataclass(frozen=True)
class IssuedCode:
    code: str
    platform_id: str | None


class OfferProvider(Protocol):
    def create_code(self, store: t.Store, cart: t.Cart | None, percent: int, ends_at: datetime) -> IssuedCode:
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
    if provider is None:
        return None
    existing = session.scalar(select(t.DiscountCode).where(t.DiscountCode.message_id == message.id))
    if existing is not None:
        return Offer(existing.code, existing.percent, existing.ends_at)
    percent = offer_percent(session, store, cart, settings)  # the store's, or the shopper's discount arm
    if percent <= 0:
        return None
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


def needs_code(session: Session, provider: OfferProvider | None, store: t.Store, message: t.RecoveryMessage) -> bool:
    """An offer step of a store that offers codes, with no code recorded for it yet."""
    if provider is None or message.template != "offer":
        return False
    if int(effective(store.settings or {})["offer_percent"]) <= 0:
        return False
    return session.scalar(select(t.DiscountCode.id).where(t.DiscountCode.message_id == message.id)) is None


def prepare(sessions: sessionmaker[Session], provider: OfferProvider | None, message_ids: Sequence[int]) -> int:
    """Make the codes of offer steps that passed every send-time check, before the send transaction opens.

    The platform call may take seconds; made inside the send transaction it would hold the row locks
    (and the store's, which orders take) all that time. `offer_for` then finds the code recorded here.
    The Sender calls this only with messages its checks decided to send (a code for a message that is
    then cancelled would be waste). Returns how many codes were made.
    """
    if provider is None or not message_ids:
        return 0
    with sessions() as session:
        wanted = session.execute(
            select(t.RecoveryMessage, t.Cart, t.Store)
            .join(t.Cart, t.Cart.id == t.RecoveryMessage.cart_id)
            .join(t.Store, t.Store.id == t.RecoveryMessage.store_id)
            .outerjoin(t.DiscountCode, t.DiscountCode.message_id == t.RecoveryMessage.id)
            .where(
                t.RecoveryMessage.id.in_(list(message_ids)),
                t.RecoveryMessage.status == "queued",
                t.RecoveryMessage.template == "offer",
                t.Cart.status == "abandoned",
                t.DiscountCode.id.is_(None),
            )
        ).all()
    made = 0
    for message, cart, store in wanted:
        settings = effective(store.settings or {})
        if settings.get("offer_arms"):  # the shopper's arm, drawn and recorded before the platform call
            with sessions.begin() as session:
                percent = offer_percent(session, session.merge(store), session.merge(cart), settings)
        else:
            percent = int(settings["offer_percent"])
        if percent <= 0:
            continue
        ends_at = utcnow() + timedelta(seconds=int(settings["offer_window"]))
        try:
            issued = provider.create_code(store, cart, percent, ends_at)
        except OfferUnavailable as exc:
            log.warning("store %s: no offer for message %s (%s)", store.id, message.id, exc)
            continue
        try:
            with sessions.begin() as session:
                session.add(t.DiscountCode(
                    store_id=store.id, cart_id=cart.id, message_id=message.id, code=issued.code,
                    platform_id=issued.platform_id, percent=percent, ends_at=ends_at, created_at=utcnow(),
                ))
            made += 1
        except IntegrityError:  # a duplicate job recorded one first: ours is single-use and expires unused
            log.info("message %s: offer code already recorded", message.id)
    return made


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
    store = session.get(t.Store, row.store_id)
    if store is not None and store.platform == "woocommerce":
        # WooCommerce has no /discount/ URL: the CartResQ plugin's restore endpoint applies `coupon`.
        return f"{url}{'&' if parts.query else '?'}coupon={quote(row.code, safe='')}"
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


# --- Exit-popup codes: one per tracker session (and cart), made after the beacon's transaction. ---------


@dataclass(frozen=True)
class ExitCodeRequest:
    """An exit answer waiting for a code: made by `ExitOffers.answer` once the beacon is committed."""

    store_id: int
    cart_id: int | None
    sid: str
    percent: int
    window: int
    text: str
    #: The answer when no code can be had: never promise a discount the shopper cannot redeem.
    fallback: dict[str, object]


def find_exit_code(session: Session, store_id: int, cart_id: int | None, sid: str) -> t.DiscountCode | None:
    """The exit code already made for this session or this cart, live or not."""
    match = t.DiscountCode.exit_sid == sid
    if cart_id is not None:
        match = or_(match, (t.DiscountCode.cart_id == cart_id) & t.DiscountCode.message_id.is_(None))
    return session.scalars(
        select(t.DiscountCode)
        .where(t.DiscountCode.store_id == store_id, match)
        .order_by(t.DiscountCode.id)
        .limit(1)
    ).first()


def exit_codes_since(session: Session, store_id: int, since: datetime) -> int:
    """Exit-popup codes made for this store since `since` (message codes not counted)."""
    return int(session.scalar(
        select(func.count()).select_from(t.DiscountCode).where(
            t.DiscountCode.store_id == store_id, t.DiscountCode.message_id.is_(None),
            t.DiscountCode.created_at >= since,
        )
    ) or 0)


def is_live(code: t.DiscountCode, now: datetime) -> bool:
    return code.deleted_at is None and code.ends_at > now


def offer_answer(code: str, text: str) -> dict[str, object]:
    return {"popup": {"kind": "offer", "code": code, "text": text}}


@dataclass
class ExitOffers:
    """Makes exit codes through `provider` with a short budget; a failing store is left alone for a while.

    The shopper's browser is waiting for this answer, so after a platform failure the next exits of that
    store get the fallback at once instead of each waiting out a timeout.
    """

    sessions: sessionmaker[Session]
    provider: OfferProvider | None
    cooldown: float = 60.0
    #: Exit codes made per store in any 24 hours, at most (each is a real discount on the platform).
    daily_cap: int = 200
    _failed_at: dict[int, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, request: ExitCodeRequest) -> dict[str, object]:
        code = self.code(request)
        return offer_answer(code, request.text) if code else request.fallback

    def code(self, request: ExitCodeRequest) -> str | None:
        if self.provider is None or self._cooling(request.store_id):
            return None
        with self.sessions() as session:  # a short read; nothing is held during the platform call
            store = session.get(t.Store, request.store_id)
            cart = session.get(t.Cart, request.cart_id) if request.cart_id else None
            made_today = exit_codes_since(session, request.store_id, utcnow() - timedelta(days=1))
        if store is None or not store.active:
            return None
        if made_today >= self.daily_cap:
            log.info("store %s: exit codes capped for today (%s)", request.store_id, self.daily_cap)
            return None
        ends_at = utcnow() + timedelta(seconds=request.window)
        try:
            issued = self.provider.create_code(store, cart, request.percent, ends_at)
        except OfferUnavailable as exc:
            with self._lock:
                self._failed_at[request.store_id] = time.monotonic()
            log.warning("store %s: no exit code (%s)", request.store_id, exc)
            return None
        return self._record(request, issued, ends_at)

    def _record(self, request: ExitCodeRequest, issued: IssuedCode, ends_at: datetime) -> str | None:
        def row(sid: str | None) -> t.DiscountCode:
            return t.DiscountCode(
                store_id=request.store_id, cart_id=request.cart_id, message_id=None, exit_sid=sid,
                code=issued.code, platform_id=issued.platform_id, percent=request.percent, ends_at=ends_at,
                created_at=utcnow(),
            )

        try:
            with self.sessions.begin() as session:
                session.add(row(request.sid))
            return issued.code
        except IntegrityError:
            pass
        # A concurrent exit of the same session won: keep ours recorded (cleanup deletes it once expired)
        # and answer with the winner's, so the shopper only ever sees one code.
        with self.sessions.begin() as session:
            session.add(row(None))
            winner = find_exit_code(session, request.store_id, None, request.sid)
            return winner.code if winner is not None and is_live(winner, utcnow()) else None

    def _cooling(self, store_id: int) -> bool:
        with self._lock:
            failed = self._failed_at.get(store_id)
        return failed is not None and time.monotonic() - failed < self.cooldown
