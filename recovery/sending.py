"""The send job: re-check everything just before sending, mark the row, then call the channel."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from recovery import tables as t
from recovery.channels import (
    Channel,
    OutboundEmail,
    OutboundSms,
    PermanentSendError,
    TransientSendError,
)
from recovery.content import ItemView, MessageContext, render_email, render_sms
from recovery.links import LinkSigner
from recovery.model import CartStatus
from recovery.store_settings import effective
from recovery.tables import utcnow

log = logging.getLogger(__name__)

SEND_ACTOR = "send_message"


@dataclass(frozen=True)
class Sender:
    channels: Mapping[str, Channel]
    links: LinkSigner
    app_url: str
    from_addr: str = "reminders@cartresq.local"

    def send(self, sessions: sessionmaker[Session], message_id: int) -> str:
        """Idempotent: only a `queued` row is sent, and it is marked `sending` before the provider call.

        A crash between the mark and the provider's answer leaves the row `sending`; the dispatcher
        later marks it failed ("interrupted") instead of sending it again.
        """
        with sessions.begin() as session:
            message = session.scalar(
                select(t.RecoveryMessage).where(t.RecoveryMessage.id == message_id).with_for_update()
            )
            if message is None or message.status != "queued":
                return "nothing to do"
            # FOR SHARE on the store: an order being recorded for it (FOR UPDATE) finishes first.
            store = session.scalar(select(t.Store).where(t.Store.id == message.store_id).with_for_update(read=True))
            cart = session.get(t.Cart, message.cart_id)
            assert store is not None and cart is not None
            reason = blocking_reason(session, store, cart, message)
            if reason is not None:
                message.status, message.reason = "cancelled", reason
                return f"cancelled: {reason}"
            try:
                outbound = self._compose(store, cart, message)
            except ValueError as exc:  # e.g. an address the email package refuses, a restore URL too long
                message.status, message.reason = "failed", f"cannot compose: {exc}"[:500]
                return f"failed: {message.reason}"
            handed_over = utcnow()
            message.status, message.attempts, message.claimed_at = "sending", message.attempts + 1, handed_over
        channel = self.channels[message.channel]
        try:
            result = channel.send(outbound)
        except PermanentSendError as exc:
            return _finish(sessions, message_id, "failed", f"provider refused: {exc}"[:500])
        except TransientSendError as exc:
            _finish(sessions, message_id, "queued", f"provider unavailable: {exc}"[:500])
            raise  # the job's retry policy decides when to try again
        with sessions.begin() as session:
            row = session.get(t.RecoveryMessage, message_id)
            assert row is not None
            # sent_at is the hand-over to the provider: the shopper cannot act on it any earlier.
            row.status, row.sent_at, row.provider_message_id = "sent", handed_over, result.provider_message_id[:128]
        log.info("message %s (cart %s, step %s) sent by %s", message_id, message.cart_id, message.step, message.channel)
        return "sent"

    def _compose(self, store: t.Store, cart: t.Cart, message: t.RecoveryMessage) -> OutboundEmail | OutboundSms:
        settings = effective(store.settings or {})
        restore = f"{self.app_url}/r/{self.links.sign('restore', message.id, cart.id)}"
        unsubscribe_token = self.links.sign("unsubscribe", message.id, cart.id)
        context = MessageContext(
            store_name=settings["sender_name"] or store.name or store.domain,
            store_url=f"https://{store.domain}",
            postal_address=settings["postal_address"] or "",
            first_name=cart.first_name,
            locale=cart.locale or "en-US",
            currency=cart.currency,
            items=tuple(
                ItemView(
                    title=str(i["title"]),
                    variant_title=i.get("variant_title"),
                    quantity=int(i["quantity"]),
                    unit_price=Decimal(str(i["unit_price"])),
                    image_url=i.get("image_url"),
                )
                for i in cart.line_items
            ),
            total=cart.total,
            restore_url=restore,
            unsubscribe_url=f"{self.app_url}/u/{unsubscribe_token}",
            open_pixel_url=f"{self.app_url}/o/{self.links.sign('open', message.id, cart.id)}",
        )
        if message.channel == "sms":
            # No discount engine yet: the offer step goes out as a plain reminder rather than a made-up code.
            template = "gentle_reminder" if message.template == "offer" else message.template
            return OutboundSms(message.id, cart.id, message.step, cart.phone or "", render_sms(template, context))
        template = "gentle_reminder" if message.template == "offer" else message.template
        rendered = render_email(template, context)
        return OutboundEmail(
            message_id=message.id,
            cart_id=cart.id,
            step=message.step,
            to=cart.email or "",
            from_addr=self.from_addr,
            from_name=context.store_name,
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            unsubscribe_url=context.unsubscribe_url,
            unsubscribe_mailto=f"mailto:unsubscribe+{unsubscribe_token}@{self.from_addr.split('@')[-1]}",
            categories=("cart-recovery", f"step-{message.step}"),
        )


def blocking_reason(session: Session, store: t.Store, cart: t.Cart, message: t.RecoveryMessage) -> str | None:
    """Everything re-checked just before a send; the first reason that blocks it, or None."""
    if not store.active:
        return "store uninstalled"
    if cart.status != CartStatus.ABANDONED.value:
        return f"cart is {cart.status}"
    address = cart.email if message.channel == "email" else cart.phone
    if not address:
        return f"no {message.channel} address"
    if _ordered_since(session, cart):
        return "shopper ordered"
    suppressed = session.scalar(
        select(t.Suppression.id).where(
            t.Suppression.store_id == store.id,
            t.Suppression.channel == message.channel,
            t.Suppression.address == address.strip().lower(),
        )
    )
    if suppressed is not None:
        return "address suppressed"
    if message.channel == "sms":
        customer = session.get(t.Customer, cart.customer_id) if cart.customer_id else None
        if not (cart.accepts_sms or (customer is not None and customer.sms_consent)):
            return "no SMS consent"
    holdout = session.scalar(
        select(t.ExperimentAssignment.variant).where(
            t.ExperimentAssignment.cart_id == cart.id, t.ExperimentAssignment.experiment == "holdout"
        )
    )
    if holdout == "holdout":
        return "holdout"
    return None


def _ordered_since(session: Session, cart: t.Cart) -> bool:
    same_shopper = [t.Order.cart_id == cart.id]
    if cart.customer_id:
        same_shopper.append(t.Order.customer_id == cart.customer_id)
    if cart.email:
        same_shopper.append(t.Order.email == cart.email)
    if cart.phone:
        same_shopper.append(t.Order.phone == cart.phone)
    found = session.scalar(
        select(t.Order.id)
        .where(
            t.Order.store_id == cart.store_id,
            t.Order.cancelled_at.is_(None),
            t.Order.placed_at >= cart.last_activity_at,
            or_(*same_shopper),
        )
        .limit(1)
    )
    return found is not None


def _finish(sessions: sessionmaker[Session], message_id: int, status: str, reason: str) -> str:
    with sessions.begin() as session:
        row = session.get(t.RecoveryMessage, message_id)
        assert row is not None
        row.status, row.reason = status, reason
    log.warning("message %s: %s", message_id, reason)
    return f"{status}: {reason}"
