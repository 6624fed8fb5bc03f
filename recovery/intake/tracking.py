"""Storefront tracker beacons → carts, captured contacts and events, scoped to the beacon's store.

Platform webhooks stay the authority: a beacon fills a cart the platform has not described yet,
updates items and total only when it is newer than what the platform said, never touches a cart
that was bought, and never replaces a contact a webhook provided.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import phonenumbers
from babel.numbers import get_currency_precision
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recovery.storage import tables as t
from recovery.intake.carts import abandon_delay, push_back_abandonment, reopen_if_returned
from recovery.intake.orders import link_earlier_order
from recovery.intake.rows import OPEN
from recovery.model import CartStatus, LineItem, strip_token
from recovery.sequence.offers import ExitCodeRequest, find_exit_code, is_live, offer_answer
from recovery.config.store_settings import effective
from recovery.sequence.timing import Timing
from recovery.intake import views
from recovery.intake.tracking_schema import BeaconError

#: platform_updated_at of a cart only the tracker has described: any platform state is newer.
NO_PLATFORM_STATE = datetime(1970, 1, 1, tzinfo=UTC)
CONTACT_TYPES = ("contact", "checkout_contact")


@dataclass(frozen=True)
class Applied:
    #: The exit answer (None: answer 204).
    answer: dict[str, Any] | None
    #: Set when the answer needs a new code from the platform: made after this transaction commits.
    wants_code: ExitCodeRequest | None = None


def apply_beacon(
    session: Session, store: t.Store, beacon: dict[str, Any], now: datetime, timing: Timing = Timing(),
    may_capture: Callable[[], bool] | None = None, known: list[t.Cart] | None = None,
) -> Applied:
    """Apply one validated beacon inside the caller's transaction; the exit answer, or None.

    The caller found `store` with a SHARE lock: it never blocks other beacons, but waits for a
    webhook being processed for this store (which holds the row FOR NO KEY UPDATE; recovery/storage/locks.py), so an order applied
    just before is seen here and a tracker cart for a bought checkout is never left open.
    Raises BeaconError (nothing applied: the caller rolls back) for a phone that does not parse.
    `may_capture` is asked (and counts) before a beacon gives a cart an address it did not have: the
    caller's limit on new tracker-captured addresses per IP and per store.
    `known`: the carts the caller already holds FOR UPDATE for every token its beacons name (the track
    relay's batch, recovery/intake/track_inbox.py): looked up there instead of in the database, and the carts
    this call creates are added to it.
    """
    kind, info = beacon["type"], beacon.get("cart")
    settings = effective(store.settings or {})
    at = min(datetime.fromtimestamp(beacon["ts"] / 1000, UTC), now)
    token = strip_token(info["token"]) if info else None
    checkout_token = beacon.get("checkout_token")
    cart = _find(session, store.id, token, checkout_token, known)
    wants_contact = kind in CONTACT_TYPES or beacon.get("popup") == "email_submitted"
    contact = _contact(beacon, (cart.country if cart else None) or settings["country"]) if wants_contact else None
    if cart is None and (kind == "cart" or wants_contact):
        currency = (info or {}).get("currency") or store.currency
        cart = _create(session, store, token, checkout_token, currency, at, now)
        if known is not None and cart is not None and cart not in known:
            known.append(cart)
    detail = None
    if cart is not None:
        _link_checkout(session, cart, checkout_token)
        if kind == "cart" and info is not None:
            _apply_items(session, cart, info, at, store.currency)
        if contact is not None:
            detail = _attach_contact(cart, contact, kind, _consent_allows(beacon, settings), may_capture)
        if cart.status in OPEN:
            _touch(cart, beacon, at, abandon_delay(store, timing))
    browsing = settings["browse_abandonment"]  # a store without the flow keeps no views (and pays nothing)
    # The visitor id (kept across sessions) is tied to a cart only with the consent contact capture needs.
    vid = beacon.get("vid") if browsing and _consent_allows(beacon, settings) else None
    if browsing and cart is not None:
        views.link(session, store.id, beacon["sid"], cart.id, at)
        if vid:
            views.remember(session, store.id, vid, cart.id, at)
    if kind == "view":
        if browsing:
            views.record(session, store, beacon["sid"], beacon["product_id"], at, timing, cart.id if cart else None,
                         vid)
        return Applied(None)  # its product_views row is its record
    answer, wants_code = None, None
    if kind == "exit":
        answer, wants_code = _exit_answer(session, store, settings, cart, beacon["sid"], now)
    if answer is not None:
        shown = answer["popup"]["kind"] if answer["popup"] else "none"
        detail = "popup:offer (new code)" if wants_code else f"popup:{shown}"
    elif kind == "popup":
        detail = beacon["popup"] + (f" {detail}" if detail else "")
    elif detail is None and kind in ("checkout_started", "checkout_completed"):
        detail = "cart found" if cart else "no cart"
    if kind != "cart":  # cart beacons are frequent and the cart row is their record
        session.add(t.TrackEvent(store_id=store.id, cart_id=cart.id if cart else None, sid=beacon["sid"],
                                 type=kind, detail=(detail or None) and detail[:64], at=at))
    return Applied(answer, wants_code)


class KnownCarts(list[t.Cart]):
    """`apply_beacon`'s `known` with the carts indexed by (store, cart token), which never changes: a batch of
    200 beacons looked each up in the whole list (a fifth of the track relay's CPU)."""

    def __init__(self, carts: Any = ()) -> None:
        super().__init__(carts)
        self.by_token: dict[tuple[int, str | None], t.Cart] = {}
        for cart in self:
            self.by_token.setdefault((cart.store_id, cart.cart_token), cart)

    def append(self, cart: t.Cart) -> None:
        super().append(cart)
        self.by_token.setdefault((cart.store_id, cart.cart_token), cart)


def _find(
    session: Session, store_id: int, token: str | None, checkout_token: str | None, known: list[t.Cart] | None = None
) -> t.Cart | None:
    if known is not None:
        if checkout_token:  # may have been linked by an earlier beacon of the batch: looked for in every cart
            found = next((c for c in known if c.checkout_token == checkout_token and c.store_id == store_id), None)
            if found is not None:
                return found
        if not token:
            return None
        if isinstance(known, KnownCarts):
            return known.by_token.get((store_id, token))
        return next((c for c in known if c.cart_token == token and c.store_id == store_id), None)
    base = select(t.Cart).where(t.Cart.store_id == store_id).with_for_update()
    if checkout_token:
        cart = session.scalar(base.where(t.Cart.checkout_token == checkout_token))
        if cart is not None:
            return cart
    return session.scalar(base.where(t.Cart.cart_token == token)) if token else None


def _touch(cart: t.Cart, beacon: dict[str, Any], at: datetime, abandon_after: timedelta) -> None:
    """An open cart's activity: abandonment pushed back, the shopper's time zone and device."""
    push_back_abandonment(cart, at, abandon_after)
    cart.shopper_timezone = beacon.get("tz") or cart.shopper_timezone
    cart.device = beacon.get("device") or cart.device


def _new(store: t.Store, token: str | None, checkout_token: str | None, currency: str, at: datetime,
         now: datetime) -> dict[str, Any]:
    """A new tracker cart's columns."""
    return dict(
        store_id=store.id, cart_token=token, checkout_token=checkout_token, status=CartStatus.ACTIVE.value,
        source="tracker", line_items=[], currency=currency, subtotal=Decimal(0), total=Decimal(0),
        platform_updated_at=NO_PLATFORM_STATE, last_activity_at=at, created_at=now,
        tracked_at=None, abandon_at=None, shopper_timezone=None, device=None,
    )  # fmt: skip


def fresh_cart(session: Session, store: t.Store, token: str, beacon: dict[str, Any], now: datetime,
               timing: Timing = Timing(), *, applied: bool = True) -> Any:
    """The cart `apply_beacon` makes of a `cart` beacon (without a checkout token) that names a cart not seen
    before, as a plain object with its columns (an ORM object's instrumentation cost more than the rest);
    `applied`: with the beacon applied to it as well. The track relay inserts a batch's new carts so in one
    statement, and applying the beacon to the inserted row then changes nothing (no UPDATE after the INSERT)."""
    info = beacon["cart"]
    at = min(datetime.fromtimestamp(beacon["ts"] / 1000, UTC), now)
    cart = SimpleNamespace(**_new(store, token, None, info.get("currency") or store.currency, at, now))
    if applied:
        _apply_items(session, cart, info, at, store.currency)
        _touch(cart, beacon, at, abandon_delay(store, timing))
    return cart


def _create(
    session: Session, store: t.Store, token: str | None, checkout_token: str | None, currency: str,
    at: datetime, now: datetime,
) -> t.Cart | None:
    cart = t.Cart(**_new(store, token, checkout_token, currency, at, now))
    try:
        with session.begin_nested():
            session.add(cart)
    except IntegrityError:  # a webhook or another beacon created it between our read and our insert
        return _find(session, store.id, token, checkout_token)
    link_earlier_order(session, store.id, cart)
    return cart


def _link_checkout(session: Session, cart: t.Cart, checkout_token: str | None) -> None:
    """The web pixel names the checkout: a later checkout webhook then finds this cart by its token."""
    if not checkout_token or cart.checkout_token:
        return
    try:
        with session.begin_nested():
            cart.checkout_token = checkout_token
            session.flush()
    except IntegrityError:  # that checkout became another cart meanwhile; leave both as they are
        pass


def _apply_items(session: Session, cart: t.Cart, info: dict[str, Any], at: datetime, fallback: str) -> None:
    """Items and total, only from a beacon newer than both the platform's state and the last beacon."""
    if cart.status not in OPEN or at <= cart.platform_updated_at or (cart.tracked_at and at <= cart.tracked_at):
        return
    currency = info.get("currency") or cart.currency or fallback
    digits = get_currency_precision(currency)
    items = [
        LineItem(
            variant_id=item["variant_id"], product_id=item.get("product_id"), title=item["title"],
            variant_title=None, quantity=item["quantity"], unit_price=minor_to_decimal(item["price"], digits),
            sku=item.get("sku") or None,
        ).to_json()
        for item in info["items"]
    ]
    if info.get("total") is not None:
        total = minor_to_decimal(info["total"], digits)
    else:
        total = sum((minor_to_decimal(i["price"] * i["quantity"], digits) for i in info["items"]), Decimal(0))
    changed = items != cart.line_items or total != cart.total
    cart.line_items, cart.currency, cart.subtotal, cart.total = items, currency, total, total
    cart.tracked_at = at
    if changed:
        reopen_if_returned(session, cart, at)


def minor_to_decimal(amount: int, digits: int) -> Decimal:
    """Minor units (as /cart.js reports them) → an exact amount: 12345 USD → 123.45, 500 JPY → 500."""
    return Decimal(amount).scaleb(-digits)


def _contact(beacon: dict[str, Any], region: str | None) -> dict[str, str | None]:
    raw = beacon["contact"]
    email = raw.get("email")
    return {"email": email.strip().lower() if email else None,
            "phone": normalize_phone(raw["phone"], region) if raw.get("phone") else None}


def normalize_phone(raw: str, region: str | None) -> str:
    """E.164, reading a local number in the cart's or store's country; BeaconError if it is not a number."""
    try:
        number = phonenumbers.parse(raw, (region or "").upper() or None)
    except phonenumbers.NumberParseException:
        raise BeaconError("contact.phone: not a phone number (use the international format)") from None
    if not phonenumbers.is_valid_number(number):
        raise BeaconError("contact.phone: not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _consent_allows(beacon: dict[str, Any], settings: dict[str, Any]) -> bool:
    consent = beacon.get("consent")
    if consent is None:
        return not settings["track_consent_required"]
    return bool(consent.get("marketing") or consent.get("analytics"))


def _attach_contact(
    cart: t.Cart, contact: dict[str, str | None], kind: str, allowed: bool,
    may_capture: Callable[[], bool] | None = None,
) -> str:
    """Fill what the cart lacks; replace only what the tracker itself put there (webhooks own contacts)."""
    if not allowed:
        return "contact dropped: no consent"
    tracker_owned = cart.platform_updated_at == NO_PLATFORM_STATE
    new = {
        field: value
        for field in ("email", "phone")
        if (value := contact[field]) and (not getattr(cart, field) or tracker_owned) and getattr(cart, field) != value
    }
    if new and may_capture is not None and not may_capture():
        return "contact dropped: limit"
    changed = bool(new)
    for field, value in new.items():
        setattr(cart, field, value)
    if changed:
        cart.contact_source = f"tracker:{kind}"
        return "contact captured"
    return "contact already known"


def _exit_answer(
    session: Session, store: t.Store, settings: dict[str, Any], cart: t.Cart | None, sid: str, now: datetime
) -> tuple[dict[str, Any], ExitCodeRequest | None]:
    """The popup to show on exit intent, and whether a new unique code must be made for it.

    With `exit_offer` text and `exit_offer_percent` > 0 the offer carries this session's (or cart's) one
    code; when it cannot have one (no platform access, the platform failed, its code expired) it falls
    back to asking for an email, since an offer without a usable code would be a broken promise. With
    `exit_offer_percent=0` the merchant's text is shown as it is (it may name a code of their own).
    """
    if not settings["exit_popup"]:
        return {"popup": None}, None
    email_known = cart is not None and bool(cart.email)
    fallback: dict[str, Any] = {"popup": None} if email_known else {"popup": {"kind": "capture"}}
    text, percent = settings["exit_offer"], int(settings["exit_offer_percent"])
    if not text:
        return fallback, None
    if percent <= 0:
        return {"popup": {"kind": "offer", "code": None, "text": text}}, None
    cart_id = cart.id if cart is not None else None
    existing = find_exit_code(session, store.id, cart_id, sid)
    if existing is not None:  # at most one code per session and cart: the same one again, or none
        return (offer_answer(existing.code, text) if is_live(existing, now) else fallback), None
    if cart is None or not cart.line_items or not cart.total or cart.total <= 0:
        return fallback, None  # a code costs the merchant: only for a cart with items and value
    window = int(settings["exit_offer_window"])
    return fallback, ExitCodeRequest(store.id, cart_id, sid, percent, window, text, fallback)
