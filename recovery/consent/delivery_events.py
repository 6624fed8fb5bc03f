"""What providers report about a message after the hand-over: SendGrid's event webhook, Twilio's status
callbacks, and a send whose answer never came. Bounces, drops, spam reports and unsubscribes suppress the
address (recovery/consent/suppress.py); opens and clicks count as engagement.

Each function is idempotent: providers retry their callbacks, and a replay changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from recovery.consent.suppress import sms_opted_out, suppress_email
from recovery.sending.channels.base import OUTCOME_UNKNOWN
from recovery.storage import tables as t
from recovery.storage.tables import utcnow

#: A later event never downgrades an earlier, more final one (SendGrid and Twilio deliver out of order).
_RANK = {"delivered": 1, "undelivered": 2, "failed": 2, "bounced": 2, "dropped": 2, "spamreport": 3}


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
