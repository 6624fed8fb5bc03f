"""What providers tell us after a send: SMS keywords (STOP/START/HELP), email events, SMS status callbacks.

Each function is idempotent: providers retry their callbacks, and a replay changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from recovery.storage import tables as t
from recovery.sending.channels.base import OUTCOME_UNKNOWN
from recovery.storage.db import insert_for
from recovery.storage.tables import utcnow

#: Twilio's default opt-out keywords plus the FCC's per-se revocations; matched as the whole message.
STOP_WORDS = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout", "opt out"}
START_WORDS = {"start", "unstop", "yes"}
HELP_WORDS = {"help", "info"}

#: A later event never downgrades an earlier, more final one (SendGrid and Twilio deliver out of order).
_RANK = {"delivered": 1, "undelivered": 2, "failed": 2, "bounced": 2, "dropped": 2, "spamreport": 3}


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


# --- sends whose answer never came -------------------------------------------------------------------


def outcome_unknown(session: Session, message_id: int, *, events_will_tell: bool) -> None:
    """A provider read timeout on a row marked `sending`: the request went out, the answer did not come.

    With `events_will_tell` (SendGrid's event webhook reports every accepted message by our message_id) the
    row is left for the Sender to mark `sent`, with delivery_status "unknown" until an event settles it.
    Otherwise it is failed now with the exact reason; the Sender's own sending → failed step then finds
    nothing to change. Either way it is never sent again.
    """
    row = t.RecoveryMessage
    values: dict[str, Any] = (
        {"delivery_status": "unknown", "delivery_updated_at": utcnow()}
        if events_will_tell
        else {"status": "failed", "reason": OUTCOME_UNKNOWN}
    )
    session.execute(
        update(row)
        .where(row.id == message_id, row.status == "sending")
        .values(**values)
        .execution_options(synchronize_session=False)
    )


# --- delivery events ------------------------------------------------------------------------------------


def _set_delivery(message: t.RecoveryMessage, status: str, error: str | None, at: datetime) -> None:
    if _RANK.get(status, 0) < _RANK.get(message.delivery_status or "", 0):
        return
    message.delivery_status, message.delivery_updated_at = status, at
    if error:
        message.delivery_error = error[:500]


def _event_time(event: Mapping[str, Any]) -> datetime:
    try:
        return datetime.fromtimestamp(int(event["timestamp"]), UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return utcnow()


def _sendgrid_message(session: Session, event: Mapping[str, Any]) -> t.RecoveryMessage | None:
    """Ours by the custom arg we sent (message_id), else by sg_message_id, whose prefix is X-Message-Id."""
    message = None
    raw_id = event.get("message_id")
    if isinstance(raw_id, (str, int)) and str(raw_id).isascii() and str(raw_id).isdigit() and len(str(raw_id)) <= 18:
        message = session.get(t.RecoveryMessage, int(raw_id))
    if message is None and isinstance(event.get("sg_message_id"), str):
        prefix = event["sg_message_id"].split(".", 1)[0]
        message = session.scalars(
            select(t.RecoveryMessage).where(t.RecoveryMessage.provider_message_id == prefix).limit(1)
        ).first()
    return message if message is not None and message.channel == "email" else None


def sendgrid_events(session: Session, events: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Apply a batch of SendGrid events; returns counts by outcome (applied, unmatched, ignored)."""
    counts = {"applied": 0, "unmatched": 0, "ignored": 0}
    for event in events:
        kind = event.get("event") if isinstance(event, Mapping) else None
        if not isinstance(kind, str) or kind not in _SENDGRID_KINDS:  # a list or object is no kind either
            counts["ignored"] += 1
            continue
        message = _sendgrid_message(session, event)
        cart = session.get(t.Cart, message.cart_id) if message else None
        email = str(event.get("email") or "").strip().lower()
        # The address in the event must be the one we wrote to: a stale id never suppresses someone else.
        if message is None or cart is None or not cart.email or cart.email.strip().lower() != email:
            counts["unmatched"] += 1
            continue
        _SENDGRID_KINDS[kind](session, message, event, email, _event_time(event))
        counts["applied"] += 1
    return counts


def _delivered(
    session: Session, m: t.RecoveryMessage, e: Mapping[str, Any], email: str, at: datetime
) -> None:
    _set_delivery(m, "delivered", None, at)


def _processed(
    session: Session, m: t.RecoveryMessage, e: Mapping[str, Any], email: str, at: datetime
) -> None:
    # SendGrid accepted it: settles a send whose answer timed out ("unknown"); never downgrades later news.
    if m.delivery_status in (None, "unknown"):
        m.delivery_status, m.delivery_updated_at = "processed", at


def _bounce(session: Session, m: t.RecoveryMessage, e: Mapping[str, Any], email: str, at: datetime) -> None:
    # type "blocked" is a temporary refusal by the receiving server: recorded, not suppressed.
    _set_delivery(m, "bounced", f"{e.get('type', 'bounce')} {e.get('status', '')}".strip(), at)
    if e.get("type", "bounce") == "bounce":
        suppress_email(session, m.store_id, email, "bounced")


def _dropped(session: Session, m: t.RecoveryMessage, e: Mapping[str, Any], email: str, at: datetime) -> None:
    reason = str(e.get("reason") or "")
    _set_delivery(m, "dropped", reason, at)
    # SendGrid drops for its own suppression lists and invalid addresses: those never become deliverable.
    # Other drop reasons (e.g. content, sending quota) say nothing about the shopper.
    if any(w in reason.lower() for w in ("invalid", "bounced address", "spam reporting", "unsubscribed")):
        suppress_email(session, m.store_id, email, "dropped")


def _spamreport(
    session: Session, m: t.RecoveryMessage, e: Mapping[str, Any], email: str, at: datetime
) -> None:
    _set_delivery(m, "spamreport", None, at)
    suppress_email(session, m.store_id, email, "spamreport")


def _unsubscribe(
    session: Session, m: t.RecoveryMessage, e: Mapping[str, Any], email: str, at: datetime
) -> None:
    suppress_email(session, m.store_id, email, "unsubscribed")


def _open(session: Session, m: t.RecoveryMessage, e: Mapping[str, Any], email: str, at: datetime) -> None:
    m.opened_at = m.opened_at or at


def _click(session: Session, m: t.RecoveryMessage, e: Mapping[str, Any], email: str, at: datetime) -> None:
    m.clicked_at = m.clicked_at or at
    m.opened_at = m.opened_at or at


_SENDGRID_KINDS = {
    "processed": _processed,
    "delivered": _delivered,
    "bounce": _bounce,
    "dropped": _dropped,
    "spamreport": _spamreport,
    "unsubscribe": _unsubscribe,
    "group_unsubscribe": _unsubscribe,
    "open": _open,
    "click": _click,
}

_TWILIO_FINAL = {"delivered": "delivered", "undelivered": "undelivered", "failed": "failed"}


def twilio_status(session: Session, message_sid: str, status: str, error_code: str | None) -> bool:
    """A Twilio status callback; intermediate statuses (queued, sending, sent) change nothing."""
    message = session.scalars(
        select(t.RecoveryMessage).where(t.RecoveryMessage.provider_message_id == message_sid).limit(1)
    ).first()
    if message is None or message.channel != "sms":
        return False
    final = _TWILIO_FINAL.get(status)
    if final:
        _set_delivery(message, final, f"twilio error {error_code}" if error_code else None, utcnow())
    if error_code == "21610":
        sms_opted_out(session, message.id)
    return True
