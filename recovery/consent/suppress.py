"""Suppression: SMS keywords (STOP/START/HELP), an address no message may reach again, and the pending
messages that stop with it. What providers report after a send is in recovery/consent/delivery_events.py.

Each function is idempotent: providers retry their callbacks, and a replay changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from recovery.storage import tables as t
from recovery.storage.db import insert_for
from recovery.storage.tables import utcnow

#: Twilio's default opt-out keywords plus the FCC's per-se revocations; matched as the whole message.
STOP_WORDS = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout", "opt out"}
START_WORDS = {"start", "unstop", "yes"}
HELP_WORDS = {"help", "info"}


def keyword(body: str) -> str | None:
    """ "stop", "start", "help" or None; any case, surrounding spaces and a trailing full stop ignored."""
    word = " ".join(body.strip().rstrip(".!").split()).lower()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return None


def suppress(session: Session, store_id: int, channel: str, address: str, reason: str) -> None:
    """Add one suppression (address normalized as recovery.sending.checks compares it); a repeat is a no-op."""
    session.execute(
        insert_for(session.get_bind().dialect.name)(t.Suppression)
        .values(
            store_id=store_id,
            channel=channel,
            address=address.strip().lower(),
            reason=reason[:32],
            created_at=utcnow(),
        )
        .on_conflict_do_nothing()
    )


def _cancel_pending(
    session: Session, store_id: int, channel: str, column: Any, addresses: Iterable[str], why: str
) -> int:
    carts = select(t.Cart.id).where(t.Cart.store_id == store_id, column.in_(list(addresses)))
    result = session.execute(
        update(t.RecoveryMessage)
        .where(
            t.RecoveryMessage.cart_id.in_(carts),
            t.RecoveryMessage.channel == channel,
            t.RecoveryMessage.status.in_(("planned", "queued")),
        )
        .values(status="cancelled", reason=why)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def suppress_email(session: Session, store_id: int, address: str, reason: str) -> None:
    """Suppress and cancel what is pending for that address, as a one-click unsubscribe does."""
    address = address.strip().lower()
    suppress(session, store_id, "email", address, reason)
    _cancel_pending(session, store_id, "email", t.Cart.email, {address}, reason)


# --- SMS keywords -------------------------------------------------------------------------------------


@dataclass
class InboundSms:
    action: str | None  # "stop", "start", "help" or None
    store_ids: list[int] = field(default_factory=list)
    store_names: list[str] = field(default_factory=list)


def _phone_forms(e164: str) -> set[str]:
    """How a cart may hold the number: platforms give E.164; some drop the plus."""
    return {e164, e164.lstrip("+")}


def stores_for_number(session: Session, e164: str) -> list[int]:
    """The stores that texted this number: those with a sent SMS to it, else any store with a cart for it.

    Every store shares our one sender (TWILIO_FROM or the Messaging Service), so a STOP cannot say which
    store it means; it applies to each store that texted the number, the reading the FCC's revocation
    rules favour. Over-suppressing a store that never texted is impossible: it must have sent first.
    """
    forms = _phone_forms(e164)
    sent = session.scalars(
        select(t.Cart.store_id)
        .join(t.RecoveryMessage, t.RecoveryMessage.cart_id == t.Cart.id)
        .where(
            t.Cart.phone.in_(forms),
            t.RecoveryMessage.channel == "sms",
            t.RecoveryMessage.sent_at.is_not(None),
        )
        .distinct()
    ).all()
    if sent:
        return sorted(sent)
    return sorted(session.scalars(select(t.Cart.store_id).where(t.Cart.phone.in_(forms)).distinct()).all())


def sms_inbound(session: Session, e164: str, body: str, at: datetime | None = None) -> InboundSms:
    """Apply a STOP or START at once (same transaction as the caller's commit); HELP only reads."""
    action = keyword(body)
    result = InboundSms(action)
    if action is None:
        return result
    result.store_ids = stores_for_number(session, e164)
    stores = session.scalars(
        select(t.Store).where(t.Store.id.in_(result.store_ids)).order_by(t.Store.id)
    ).all()
    result.store_names = [s.name or s.domain for s in stores]
    forms = _phone_forms(e164)
    now = at or utcnow()
    for store_id in result.store_ids:
        if action == "stop":
            # Every spelling of the number a cart holds, so recovery.sending.checks matches whatever it compares.
            for form in {e164} | {p.strip().lower() for p in _cart_phones(session, store_id, forms)}:
                suppress(session, store_id, "sms", form, "sms stop")
            _cancel_pending(session, store_id, "sms", t.Cart.phone, forms, "sms stop")
            _set_sms_consent(session, store_id, forms, False, "sms_stop", now)
        elif action == "start":
            session.execute(
                delete(t.Suppression).where(
                    t.Suppression.store_id == store_id,
                    t.Suppression.channel == "sms",
                    t.Suppression.address.in_(forms),
                )
            )
            _set_sms_consent(session, store_id, forms, True, "sms_start", now)
    return result


def _cart_phones(session: Session, store_id: int, forms: set[str]) -> list[str]:
    return list(
        session.scalars(
            select(t.Cart.phone).where(t.Cart.store_id == store_id, t.Cart.phone.in_(forms)).distinct()
        )
    )


def _set_sms_consent(
    session: Session, store_id: int, forms: set[str], given: bool, source: str, at: datetime
) -> None:
    session.execute(
        update(t.Customer)
        .where(t.Customer.store_id == store_id, t.Customer.phone.in_(forms))
        .values(sms_consent=given, sms_consent_source=source, sms_consent_at=at)
        .execution_options(synchronize_session=False)
    )


def sms_opted_out(session: Session, message_id: int) -> None:
    """Twilio refused a send with 21610 (the number texted STOP to our sender): treat it as a STOP."""
    message = session.get(t.RecoveryMessage, message_id)
    cart = session.get(t.Cart, message.cart_id) if message else None
    if message is None or cart is None or not cart.phone:
        return
    suppress(session, message.store_id, "sms", cart.phone, "twilio 21610")
    _cancel_pending(session, message.store_id, "sms", t.Cart.phone, {cart.phone}, "sms stop")
