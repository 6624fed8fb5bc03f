"""When a message that passed every consent check may go out: quiet hours, caps, useful life.

`verdicts` decides a whole batch with a fixed number of queries. A message that may not go out now is
moved to the next allowed time (status back to `planned`), never sent early and never dropped, unless
that time is past its useful life; then it is cancelled with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.storage import tables as t
from recovery.sending.policy.caps import (
    DISPATCH_LAG, MAX_PER_CART, SENT, SMS_MAX_AGE, Guard, ledger, shopper_keys,
)
from recovery.sending.policy.hours import ANY_TIME, Window, last_allowed, next_allowed, sms_window
from recovery.sending.policy.zones import candidate_zones
from recovery.config.store_settings import effective, parse_cap
from recovery.sequence.timing import Timing

#: A reminder moved later than this after abandonment no longer fits the cart (and the next step wins).
USEFUL_LIFE = timedelta(days=7)


@dataclass(frozen=True)
class Verdict:
    action: str  # "cancel" or "reschedule"
    reason: str
    at: datetime | None = None


def window_for(channel: str, settings: dict[str, Any], cart: t.Cart) -> Window:
    if channel == "sms":
        return sms_window(settings["sms_window"], cart.country, cart.province, cart.phone)
    quiet = settings["email_quiet_hours"]
    return Window.quiet(quiet) if quiet else ANY_TIME


def zones_for(cart: t.Cart, store: t.Store, settings: dict[str, Any]) -> tuple[str, ...]:
    return candidate_zones(cart.shopper_timezone, cart.country, cart.province, cart.phone, (store.settings or {}).get("timezone") or store.timezone)


#: An SMS pulled earlier to fit its legal hours is planned this long before the window closes (dispatch lag).
SMS_FIT_MARGIN = timedelta(minutes=30)


def fit_due(channel: str, due: datetime, cart: t.Cart, store: t.Store, settings: dict[str, Any], timing: Timing) -> datetime:
    """At planning: an SMS whose due time falls in quiet hours that last past its 48 h limit is planned
    earlier, at the end of the last allowed window before the limit, instead of being cancelled later."""
    if channel != "sms" or timing.time_scale != 1 or cart.abandoned_at is None:
        return due
    zones, window = zones_for(cart, store, settings), window_for(channel, settings, cart)
    limit = cart.abandoned_at + SMS_MAX_AGE
    moved = next_allowed(due, zones, window)
    if moved is not None and moved <= limit:
        return due  # the pre-send policy moves it within the limit
    # The window shrunk by the margin, so a dispatch lag cannot carry it into quiet hours again.
    margin = int(SMS_FIT_MARGIN.total_seconds() // 60)
    inner = Window(tuple((start, end - margin) for start, end in window.spans if end - margin > start))
    earlier = last_allowed(min(due, limit), cart.abandoned_at, zones, inner)
    return earlier or due


def verdicts(session: Session, batch: Sequence[Any], now: datetime, timing: Timing) -> tuple[dict[int, Verdict], dict[int, Guard]]:
    """Message id → verdict for those that may not go now; message id → guard for those that may."""
    if not batch:
        return {}, {}
    keys = {c.cart.id: shopper_keys(c.cart) for c in batch}
    rows = ledger(session, {(c.store.id, k) for c in batch for k in keys[c.cart.id]})
    last_sent = {key: (r.last_sent_at, r.last_message_id) for key, r in rows.items() if r.last_sent_at is not None}
    counts, next_due = _cart_history(session, batch)
    out: dict[int, Verdict] = {}
    guards: dict[int, Guard] = {}
    for candidate in sorted(batch, key=lambda c: (c.message.due_at, c.message.id)):
        message, cart, store = candidate.message, candidate.cart, candidate.store
        settings = effective(store.settings or {})
        cap_seconds = parse_cap(settings["shopper_cap"])
        cap = timing.span(cap_seconds) if cap_seconds else None
        limit = MAX_PER_CART.get(message.channel)
        if limit is not None and counts.get((cart.id, message.channel), 0) >= limit:
            out[message.id] = Verdict("cancel", f"{message.channel}_cap_reached")
            continue
        deadline = (cart.abandoned_at or now) + timing.span(USEFUL_LIFE.total_seconds())
        if message.id in next_due:
            deadline = min(deadline, next_due[message.id])
        sms_deadline = (cart.abandoned_at or now) + timing.span(SMS_MAX_AGE.total_seconds()) + DISPATCH_LAG
        earliest, why = now, None
        last = max(
            (at for k in keys[cart.id] if (store.id, k) in last_sent
             for at, by in [last_sent[(store.id, k)]] if by != message.id),  # its own earlier try does not count
            default=None,
        )
        if cap is not None and last is not None and last + cap > now:
            earliest, why = last + cap, "shopper_cap"
        if timing.time_scale == 1:  # local hours are wall-clock facts; compressed demo time has no nights
            moved = next_allowed(earliest, zones_for(cart, store, settings), window_for(message.channel, settings, cart))
            if moved is None:
                out[message.id] = Verdict("cancel", "no_allowed_send_time")
                continue
            if moved > earliest:
                earliest, why = moved, "quiet_hours"
        if message.channel == "sms" and max(earliest, now) > sms_deadline:
            out[message.id] = Verdict("cancel", "sms_window_expired")
            continue
        if earliest > now and earliest > deadline:  # only a move can make it late; an overdue one still goes
            out[message.id] = Verdict("cancel", f"{why}_past_useful_time")
            continue
        if earliest > now:
            out[message.id] = Verdict("reschedule", why or "not_yet", earliest)
            continue
        ids = tuple(rows[(store.id, k)].id for k in keys[cart.id])
        guards[message.id] = Guard(store.id, cart.id, message.channel, keys[cart.id], cap, ids)
        for key in keys[cart.id]:  # what this one will send counts for the rest of the batch
            last_sent[(store.id, key)] = (now, message.id)
        counts[(cart.id, message.channel)] = counts.get((cart.id, message.channel), 0) + 1
    return out, guards


def _cart_history(
    session: Session, batch: Sequence[Any]
) -> tuple[dict[tuple[int, str], int], dict[int, datetime]]:
    """One query for the batch's carts: (cart, channel) → messages handed over; and message id → due time
    of the next planned step of its cart (a reminder moved past it is pointless). Filtered by cart only,
    so the plan is the (cart_id, step) index whatever the statistics say of `status`."""
    rows = session.execute(
        select(t.RecoveryMessage.cart_id, t.RecoveryMessage.step, t.RecoveryMessage.channel,
               t.RecoveryMessage.status, t.RecoveryMessage.due_at)
        .where(t.RecoveryMessage.cart_id.in_({c.cart.id for c in batch}))
    ).all()
    counts: dict[tuple[int, str], int] = {}
    planned: dict[int, list[tuple[int, datetime]]] = {}
    for r in rows:
        if r.status in SENT:
            counts[(r.cart_id, r.channel)] = counts.get((r.cart_id, r.channel), 0) + 1
        elif r.status == "planned":
            planned.setdefault(r.cart_id, []).append((r.step, r.due_at))
    next_due: dict[int, datetime] = {}
    for candidate in batch:
        later = [due for step, due in planned.get(candidate.cart.id, ()) if step > candidate.message.step]
        if later:
            next_due[candidate.message.id] = min(later)
    return counts, next_due
