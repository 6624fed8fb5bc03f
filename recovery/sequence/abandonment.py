"""Idle carts with contact details become abandoned: holdout or sequence, one sequence per shopper.

Work is done per batch of carts, with a fixed number of queries per batch, not per cart.
"""

from __future__ import annotations

import logging
import random
from functools import partial
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import exists, func, insert, or_, select
from sqlalchemy.orm import Session

from recovery.sequence import holdout
from recovery.intake import subscriptions as push
from recovery.storage import tables as t
from recovery.billing.usage import PlanLimits
from recovery.sequence.plan import cancel_pending
from recovery.model import CartStatus
from recovery.sending.policy import fit_due
from recovery.sequence.plan import SendTimeModel, first_offsets, plan, store_sequence
from recovery.config.store_settings import effective
from recovery.sequence.timing import Timing

log = logging.getLogger(__name__)

HOLDOUT = holdout.HOLDOUT
DEFAULT_CANDIDATES: tuple[float, ...] = tuple(0.5 + 0.25 * i for i in range(15))


#: The cart has a beacon in the track inbox (recovery/intake/track_inbox.py) that may move its abandonment
#: time: it waits for the relay (seconds), which applies the beacon with the cart locked. A beacon names the
#: cart by its cart token or its checkout token (the web pixel's checkout beacons know only the latter).
_WAITING = (t.TrackInbox.failed_at.is_(None), t.TrackInbox.store_id == t.Cart.store_id)
_BEACON_WAITING = or_(
    exists().where(*_WAITING, t.TrackInbox.cart_token == t.Cart.cart_token),
    exists().where(*_WAITING, t.TrackInbox.checkout_token == t.Cart.checkout_token),
)


@dataclass
class Abandoner:
    send_time: SendTimeModel
    timing: Timing
    rng: random.Random
    candidates: Sequence[float] = DEFAULT_CANDIDATES
    #: Share of first reminders sent at a uniformly random slot (logged with its propensity).
    epsilon: float = 0.1
    #: The plan limit (recovery/billing); None: billing is off, every store is unlimited.
    limits: PlanLimits | None = None

    def run(self, session: Session, now: datetime, limit: int = 500) -> list[int]:
        """Abandon every due cart (row-locked, skipping carts another dispatcher holds); caller commits.

        Locks (recovery/storage/locks.py): carts, then their messages, then the assignments' inserts; no store lock
        (the inserts' foreign-key KEY SHARE on the store never waits: intake holds FOR NO KEY UPDATE)."""
        due = session.scalars(
            select(t.Cart)
            .where(
                t.Cart.status == CartStatus.ACTIVE.value,
                t.Cart.abandon_at <= now,
                or_(t.Cart.email.is_not(None), t.Cart.phone.is_not(None)),
                ~_BEACON_WAITING,  # a newer beacon of it is not applied yet (Settings.track_inbox)
            )
            .order_by(t.Cart.abandon_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not due:
            return []
        ids = [c.id for c in due]
        stores = {s.id: s for s in session.scalars(select(t.Store).where(t.Store.id.in_({c.store_id for c in due})))}
        customer_ids = {c.customer_id for c in due if c.customer_id}
        customers = {c.id: c for c in session.scalars(select(t.Customer).where(t.Customer.id.in_(customer_ids)))}
        variants = self._assign(session, due, stores, now)
        repeats = tracker_repeats(session, due, now)  # a tracker-captured address: one sequence a day
        superseded = _supersede(session, [c for c in due if c.id not in repeats]) | repeats
        subscribed = push.carts_with_subscription(session, ids)  # push steps only where a browser subscribed
        history = _email_history(session, due)
        existing: dict[int, dict[int, t.RecoveryMessage]] = {}
        for message in session.scalars(select(t.RecoveryMessage).where(t.RecoveryMessage.cart_id.in_(ids))):
            existing.setdefault(message.cart_id, {})[message.step] = message
        new_rows: list[dict[str, object]] = []
        decisions: list[dict[str, object]] = []
        starting = [c for c in due if stores[c.store_id].active and c.id not in superseded]
        # Holdout carts count too; a held cart is abandoned without a sequence (same transaction as the plan).
        held = self.limits.admit(session, stores, starting, now) if self.limits and starting else {}
        for cart in due:
            cart.status, cart.abandoned_at = CartStatus.ABANDONED.value, now
            store = stores[cart.store_id]
            if store.active and variants[cart.id] != HOLDOUT and cart.id not in superseded and cart.id not in held:
                features = cart_features(cart, customers.get(cart.customer_id or 0), store, history.get(cart.id))
                customer = customers.get(cart.customer_id or 0)
                rows, decision = self._plan(store, cart, customer, features, existing.get(cart.id, {}), cart.id in subscribed)
                new_rows += rows
                if decision and rows and rows[0].get("step") == 1 and 1 not in existing.get(cart.id, {}):
                    decisions.append({**decision, "decided_at": now})
        if new_rows:  # one bulk insert per batch: ORM objects cost more than the rows themselves
            session.execute(insert(t.RecoveryMessage), new_rows)
        if decisions:
            session.execute(insert(t.SendDecision), decisions)
        return ids

    def _plan(
        self,
        store: t.Store,
        cart: t.Cart,
        customer: t.Customer | None,
        features: Mapping[str, float],
        existing: dict[int, t.RecoveryMessage],
        has_push: bool = False,
    ) -> tuple[list[dict[str, object]], dict[str, object] | None]:
        settings = effective(store.settings or {})
        sms_allowed = bool(settings["sms_enabled"]) and (cart.accepts_sms or bool(customer and customer.sms_consent))
        offsets = first_offsets(settings, self.candidates)
        # the store's own model when it has one that is served, else the pooled one (app/sendtime.py)
        for_store = getattr(self.send_time, "for_store", None)
        send_time = for_store(store.domain) if for_store is not None else self.send_time
        greedy = send_time.best_offset(features, offsets)
        greedy = min(offsets, key=lambda o: abs(o - greedy))  # a fallback policy may not know the window
        chosen, propensity = explore(greedy, offsets, self.epsilon, self.rng)
        version = str(getattr(send_time, "version", "unknown"))
        decision = {
            "store_id": cart.store_id, "cart_id": cart.id, "candidates": list(offsets), "chosen": chosen,
            "propensity": propensity, "greedy": greedy, "epsilon": self.epsilon,
            "policy": "fixed" if version == "fixed" else "model", "model_version": version[:64],
            "features": dict(features),
        }  # fmt: skip
        predicted = getattr(send_time, "predicted", None)
        if version != "fixed" and predicted is not None:  # for the weekly calibration check
            decision["features"] = {**features, "predicted": predicted(features, chosen)}
        fit = partial(fit_due, cart=cart, store=store, settings=settings, timing=self.timing)  # legal SMS hours
        return plan(cart, store_sequence(settings), chosen, self.timing, sms_allowed, existing, has_push, fit), decision

    def _assign(
        self, session: Session, carts: Sequence[t.Cart], stores: Mapping[int, t.Store], now: datetime
    ) -> dict[int, str]:
        """By shopper (recovery.sequence.holdout) and recorded once: a cart that is abandoned again keeps its group."""
        rows = session.execute(
            select(t.ExperimentAssignment.cart_id, t.ExperimentAssignment.variant).where(
                t.ExperimentAssignment.cart_id.in_([c.id for c in carts]),
                t.ExperimentAssignment.experiment == HOLDOUT,
            )
        ).all()
        variants = {cart_id: variant for cart_id, variant in rows}
        new = []
        for cart in carts:
            if cart.id in variants:
                continue
            store = stores[cart.store_id]
            percent = effective(store.settings or {})["holdout_percent"]
            unit = holdout.unit(holdout.store_salt(session, store, self.rng), holdout.shopper_key(cart))
            variants[cart.id] = holdout.variant(unit, percent)
            new.append({"store_id": cart.store_id, "cart_id": cart.id, "experiment": HOLDOUT,
                        "variant": variants[cart.id], "assigned_at": now, "unit": unit})
        if new:
            session.execute(insert(t.ExperimentAssignment), new)
        return variants


#: A contact captured by the storefront tracker gets at most one cart's sequence per store in this time.
TRACKER_SEQUENCE_EVERY = timedelta(days=1)


def tracker_repeats(session: Session, carts: Sequence[t.Cart], now: datetime) -> set[int]:
    """The carts of this batch whose contact came from a beacon (anyone can type an address into a
    storefront) and whose address already had a cart with a sequence at this store in the last day, or
    gets one from an earlier cart of this batch: they are abandoned without a sequence."""
    tracked = sorted(
        (c for c in carts if (c.contact_source or "").startswith("tracker:")), key=lambda c: (c.abandon_at, c.id)
    )
    if not tracked:
        return set()
    emails = {c.email for c in tracked if c.email}
    phones = {c.phone for c in tracked if c.phone}
    rows = session.execute(
        select(t.Cart.store_id, t.Cart.email, t.Cart.phone)
        .where(
            t.Cart.store_id.in_({c.store_id for c in tracked}),
            t.Cart.id.not_in([c.id for c in tracked]),
            t.Cart.abandoned_at >= now - TRACKER_SEQUENCE_EVERY,
            or_(t.Cart.email.in_(emails), t.Cart.phone.in_(phones)),
            select(t.RecoveryMessage.id).where(t.RecoveryMessage.cart_id == t.Cart.id).exists(),
        )
    ).all()
    taken = {(r.store_id, contact) for r in rows for contact in (r.email, r.phone) if contact}
    repeats: set[int] = set()
    for cart in tracked:
        contacts = {(cart.store_id, x) for x in (cart.email, cart.phone) if x}
        if contacts & taken:
            repeats.add(cart.id)
        else:
            taken |= contacts
    return repeats


def _supersede(session: Session, carts: Sequence[t.Cart]) -> set[int]:
    """The shopper's newest cart is the only one with a sequence: cancel older carts' pending messages.

    Returns the carts of this batch that are themselves older than another cart of their shopper
    (in the batch or not): they are abandoned without a sequence.
    """
    emails = {c.email for c in carts if c.email}
    phones = {c.phone for c in carts if c.phone}
    candidates = session.execute(
        select(t.Cart.id, t.Cart.store_id, t.Cart.email, t.Cart.phone, t.Cart.abandon_at).where(
            t.Cart.store_id.in_({c.store_id for c in carts}),
            or_(t.Cart.email.in_(emails), t.Cart.phone.in_(phones)),
        )
    ).all()
    by_contact: dict[tuple[int, str], list[tuple[int, datetime | None]]] = {}
    for row in candidates:
        for contact in {row.email, row.phone} - {None}:
            by_contact.setdefault((row.store_id, contact), []).append((row.id, row.abandon_at))
    older: set[int] = set()
    for cart in carts:
        others = [
            (other_id, at)
            for contact in {cart.email, cart.phone} - {None}
            for other_id, at in by_contact.get((cart.store_id, contact), [])
            if other_id != cart.id
        ]
        if any(at and cart.abandon_at and at > cart.abandon_at for _, at in others):
            older.add(cart.id)  # the shopper has moved on to a newer cart
        else:
            older.update(other_id for other_id, _ in others)
    cancel_pending(session, sorted(older), "superseded by a newer cart")
    return older


def explore(greedy: float, offsets: Sequence[float], epsilon: float, rng: random.Random) -> tuple[float, float]:
    """Epsilon-greedy: the greedy slot, or with probability epsilon a uniformly random one.
    Returns the slot and its probability under this policy (what off-policy evaluation divides by)."""
    k = len(offsets)
    chosen = offsets[rng.randrange(k)] if epsilon > 0 and rng.random() < epsilon else greedy
    return chosen, (1 - epsilon) * (chosen == greedy) + epsilon / k


def _email_history(session: Session, carts: Sequence[t.Cart]) -> dict[int, tuple[int, int, int]]:
    """Per cart: (emails sent, opened, clicked) to the same address for its store's other carts."""
    emails = {(c.store_id, c.email) for c in carts if c.email}
    if not emails:
        return {}
    m = t.RecoveryMessage
    rows = session.execute(
        select(t.Cart.store_id, t.Cart.email, t.Cart.id, func.count(), func.count(m.opened_at), func.count(m.clicked_at))
        .join(m, m.cart_id == t.Cart.id)
        .where(t.Cart.store_id.in_({s for s, _ in emails}), t.Cart.email.in_({e for _, e in emails}),
               m.channel == "email", m.status == "sent")
        .group_by(t.Cart.store_id, t.Cart.email, t.Cart.id)
    ).all()  # fmt: skip
    out: dict[int, tuple[int, int, int]] = {}
    for cart in carts:
        sums = [0, 0, 0]
        for store_id, email, cart_id, *counts in rows:
            if (store_id, email) == (cart.store_id, cart.email) and cart_id != cart.id:
                sums = [a + b for a, b in zip(sums, counts, strict=True)]
        if sums[0]:
            out[cart.id] = (sums[0], sums[1], sums[2])
    return out


def cart_features(
    cart: t.Cart, customer: t.Customer | None, store: t.Store, history: tuple[int, int, int] | None = None
) -> Mapping[str, float]:
    """The send-time model's cart features (ml.design.CART_KEYS); unknown ones are left out (the
    model uses neutral values). `history`: earlier emails, opens, clicks to this address, if any."""
    assert cart.abandoned_at is not None
    local = cart.abandoned_at.astimezone(_zone(cart.shopper_timezone or store.timezone))
    features: dict[str, float] = {
        "hour_of_abandonment": local.hour + local.minute / 60,
        "day_of_week": local.weekday(),
        "cart_value": float(cart.total),  # a model input, not money: float is fine here
        "items_in_cart": sum(int(i.get("quantity", 0)) for i in cart.line_items),
        "viewed_checkout": 1.0 if cart.checkout_token else 0.0,
        "device_type": {"desktop": 0.0, "mobile": 1.0, "tablet": 2.0}.get(cart.device or "", 0.0),
    }
    if customer is not None:
        features["previous_purchases"] = customer.orders_count
    if history:
        features["prior_emails"], features["prior_opens"], features["prior_clicks"] = map(float, history)
    return features


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
