"""Emails to the merchant (password reset, test messages), through the same email channel as recovery
messages: SendGrid or SMTP when configured, else the local outbox (where tests read them)."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from recovery.sending.channels import OutboundEmail, PermanentSendError, SendResult, TransientSendError


class MailError(RuntimeError):
    pass


def _domain(app_url: str) -> str:
    return urlsplit(app_url).hostname or "cartresq.local"


def send(to: str, subject: str, text: str, html: str | None = None, *, from_name: str = "CartResQ",
         reply_to: str | None = None) -> SendResult:
    from app.web import runtime

    rt = runtime()
    domain = _domain(rt.settings.app_url)
    message = OutboundEmail(
        message_id=secrets.randbits(48), cart_id=0, step=0, to=to, from_addr=f"reminders@{domain}",
        from_name=from_name, subject=subject, html=html or f"<pre>{_escape(text)}</pre>", text=text,
        unsubscribe_url="", unsubscribe_mailto="", transactional=True,  # an account email, not marketing
        reply_to=reply_to or None, categories=("merchant",),
    )
    try:
        return rt.sender.channels["email"].send(message)
    except (PermanentSendError, TransientSendError) as exc:
        raise MailError(str(exc)) from exc


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


#: Emails a visitor can make us send: test messages per store, reset links per address and per client IP.
LIMITS = {"test": "10/hour", "reset-email": "3/hour", "reset-ip": "20/hour"}


def refused(kind: str, key: str) -> int | None:
    """Count one email of `kind` for `key` (moving window, shared through Redis when there is one, the same
    limiter as /track); None while allowed, else the seconds to wait."""
    from flask import current_app
    from limits import parse

    from app.web.track import LIMITER

    return current_app.extensions[LIMITER].retry_after(parse(LIMITS[kind]), "mail", kind, key)  # type: ignore[no-any-return]
