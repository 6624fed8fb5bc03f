"""Billing emails to merchants and the operator (plan notices, Enterprise enquiries), through the email
channel the runtime chose (SendGrid, SMTP); without one, `.eml` files under CARTRESQ_OUTBOX_DIR/billing/email/.
Addresses and bodies are never logged."""

from __future__ import annotations

import html
import logging
import time
from datetime import datetime


from recovery.storage import tables as t
from recovery.billing.notices import claim_notices, notice_text
from recovery.sending.channels import OutboundEmail, OutboxChannel
from recovery.sending.channels.base import PermanentSendError, TransientSendError

log = logging.getLogger(__name__)


def send_mail(rt, to: str, subject: str, text: str, *, reply_to: str | None = None) -> None:  # type: ignore[no-untyped-def]
    channel = rt.sender.channels.get("email")
    host = rt.settings.app_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "cartresq.local"
    if channel is None or isinstance(channel, OutboxChannel):
        channel = OutboxChannel(rt.settings.outbox_dir / "billing", message_domain=host)
    message = OutboundEmail(
        message_id=time.time_ns(), cart_id=0, step=0, to=to, from_addr=f"billing@{host}", from_name="CartResQ",
        subject=subject, html="<p>" + html.escape(text).replace("\n", "<br>\n") + "</p>", text=text,
        unsubscribe_url="", unsubscribe_mailto="", transactional=True,  # a service notice, not marketing
        reply_to=reply_to, categories=("billing",),
    )
    channel.send(message)


def send_due_notices(rt, now: datetime) -> int:  # type: ignore[no-untyped-def]
    """The 80 % / 100 % emails the abandoner flagged, once per store and period each. A notice is marked sent
    in the transaction that claims it, after the provider accepted it; a failure leaves it for the next pass."""
    sent = 0
    with rt.sessions.begin() as session:
        for notice in claim_notices(session, now):
            store = session.get(t.Store, notice.store_id)
            billing = session.get(t.StoreBilling, notice.store_id)
            if store is None or billing is None or not billing.contact_email:
                notice.mark_sent(session, now)  # nobody to tell: the banner still says it
                continue
            subject, text = notice_text(store, notice, rt.settings.app_url)
            try:
                send_mail(rt, billing.contact_email, subject, text)
            except (PermanentSendError, TransientSendError, OSError) as exc:
                log.warning("billing notice for store %s not sent: %s", store.id, type(exc).__name__)
                continue
            notice.mark_sent(session, now)
            sent += 1
    return sent


__all__ = ["send_due_notices", "send_mail"]
