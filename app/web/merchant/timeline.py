"""One cart's story for its page: storefront events, platform webhooks, messages (with reasons in plain
words), the order. Times in the store's time zone; addresses masked; no payload is shown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.web.dashboard import mask_text
from app.web.merchant.ranges import local
from app.web.merchant.reasons import message_name, words
from recovery.storage import tables as t
from recovery.measure.figures import zone

SOURCES = {"webhook": "a platform webhook (checkout)", "tracker": "the storefront tracker", "reconcile": "reconciliation with the platform"}
DELIVERY = {
    "delivered": "Delivered (the provider confirmed it)",
    "bounced": "Bounced: the address does not accept mail",
    "dropped": "Dropped by the provider",
    "spamreport": "Reported as spam by the shopper",
    "undelivered": "Not delivered by the carrier",
    "failed": "Delivery failed",
}
STATUS = {"planned": "Planned", "queued": "Queued to send", "sending": "Being sent", "sent": "Sent",
          "cancelled": "Not sent", "failed": "Failed"}  # fmt: skip


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str  # storefront, webhook, message, order, cart
    text: str
    detail: str = ""

    def when(self, tz_name: str | None) -> str:
        return local(self.at, zone(tz_name))


def timeline(session: Session, cart: t.Cart, tz_name: str | None) -> list[Event]:
    events = [Event(cart.created_at, "webhook" if cart.source == "webhook" else "storefront",
                    f"Cart first seen, from {SOURCES.get(cart.source, cart.source)}")]  # fmt: skip
    if cart.platform_updated_at and cart.source == "webhook" and cart.platform_updated_at > cart.created_at:
        events.append(Event(cart.platform_updated_at, "webhook", "Last checkout update from the platform"))
    for e in session.scalars(select(t.TrackEvent).where(t.TrackEvent.cart_id == cart.id).order_by(t.TrackEvent.at).limit(200)):
        events.append(Event(e.at, "storefront", f"Storefront: {e.type.replace('_', ' ')}", e.detail or ""))
    if cart.abandoned_at:
        group = session.scalar(select(t.ExperimentAssignment.variant).where(
            t.ExperimentAssignment.cart_id == cart.id, t.ExperimentAssignment.experiment == "holdout"))  # fmt: skip
        which = {"holdout": " — holdout group: no message, to measure the lift"}.get(group or "", "")
        events.append(Event(cart.abandoned_at, "cart", "Abandoned" + which))
    for m in session.scalars(select(t.RecoveryMessage).where(t.RecoveryMessage.cart_id == cart.id).order_by(t.RecoveryMessage.step)):
        name = message_name(m)  # a flow's message by its flow's name: its step is a database id
        events.append(Event(m.created_at, "message", f"{name}: planned for {local(m.due_at, zone(tz_name))}"))
        if m.sent_at:
            events.append(Event(m.sent_at, "message", f"{name}: sent"))
        if m.delivery_status and m.delivery_updated_at:
            said = DELIVERY.get(m.delivery_status, m.delivery_status)
            events.append(Event(m.delivery_updated_at, "message", f"{name}: {said}", mask_text(m.delivery_error)))
        if m.opened_at:
            events.append(Event(m.opened_at, "message", f"{name}: opened"))
        if m.clicked_at:
            events.append(Event(m.clicked_at, "message", f"{name}: clicked through to the cart"))
        if m.status in ("cancelled", "failed") or (m.reason and m.status in ("planned", "queued")):
            # no time is stored for these outcomes: shown at the message's due time
            events.append(Event(m.due_at, "message", f"{name}: {STATUS.get(m.status, m.status)}", mask_text(words(m.reason))))
    for o in session.scalars(select(t.Order).where(t.Order.cart_id == cart.id).order_by(t.Order.placed_at)):
        how = "recovered: after one of our messages" if o.attribution == "recovered" else "completed without our messages"
        events.append(Event(o.placed_at, "order", f"Order {o.name or o.platform_order_id} placed, {o.total} {o.currency} ({how})"))
        if o.cancelled_at:
            events.append(Event(o.cancelled_at, "order", f"Order {o.name or o.platform_order_id} cancelled"))
    return sorted(events, key=lambda e: e.at)
