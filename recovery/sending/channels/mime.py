"""The RFC 5322 message for an OutboundEmail, exactly as a mail provider or the outbox would carry it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email import policy
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime

from recovery.sending.channels.base import OutboundEmail

_URI_FORBIDDEN = set(" \t\r\n<>,")  # would break the <uri>, <uri> list of RFC 2369


class _VerbatimHeader(str):
    """A header written as given and folded only between its URIs.

    The email package turns any unstructured header token longer than a line into RFC 2047 encoded
    words, and signed unsubscribe URLs always are that long. Mailbox providers do not decode encoded
    words in List-Unsubscribe, so one-click unsubscribe would silently stop working.
    """

    name: str
    parts: tuple[str, ...]

    def __new__(cls, name: str, parts: Sequence[str]) -> _VerbatimHeader:
        header = super().__new__(cls, ", ".join(parts))
        header.name, header.parts = name, tuple(parts)
        return header

    def fold(self, *, policy: Policy) -> str:  # called by the generator for objects with a `name`
        return f"{self.name}: " + f",{policy.linesep} ".join(self.parts) + policy.linesep


def _address(addr_spec: str, display_name: str = "") -> Address:
    """Raises ValueError for anything that is not one plain user@domain (CR/LF included)."""
    try:
        address = Address(display_name=display_name, addr_spec=addr_spec)
    except (ValueError, IndexError, HeaderParseError) as exc:  # the parser's errors vary by input
        raise ValueError(f"not an email address: {addr_spec!r}") from exc
    if not address.username or not address.domain:
        raise ValueError(f"not an email address: {addr_spec!r}")
    return address


def _list_unsubscribe(*uris: str) -> _VerbatimHeader:
    for uri in uris:
        if not uri.isascii() or _URI_FORBIDDEN & set(uri):
            raise ValueError(f"unsubscribe URI cannot go into List-Unsubscribe: {uri!r}")
    return _VerbatimHeader("List-Unsubscribe", [f"<{uri}>" for uri in uris])


def build_email_message(
    m: OutboundEmail, *, message_domain: str, date: datetime | None = None
) -> EmailMessage:
    """multipart/alternative (text first, so clients prefer the HTML) with RFC 8058 one-click headers.

    Raises ValueError for an invalid address or a header value that would allow injection.
    """
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = _address(m.from_addr, m.from_name)  # Address quotes and encodes non-ASCII names
    msg["To"] = _address(m.to)
    msg["Subject"] = m.subject
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = f"<cartresq-{m.message_id}@{message_domain}>"
    if not m.transactional:  # marketing mail only: an account email has nothing to unsubscribe from
        msg["List-Unsubscribe"] = _list_unsubscribe(m.unsubscribe_url, m.unsubscribe_mailto)
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if m.reply_to:
        msg["Reply-To"] = _address(m.reply_to)
    msg["X-CartResQ-Message-Id"] = str(m.message_id)
    msg["X-CartResQ-Cart-Id"] = str(m.cart_id)
    msg["X-CartResQ-Step"] = str(m.step)
    # Quoted-printable keeps both bodies 7-bit clean through any relay and readable in the .eml.
    msg.set_content(m.text, charset="utf-8", cte="quoted-printable")
    msg.add_alternative(m.html, subtype="html", charset="utf-8", cte="quoted-printable")
    for part in msg.iter_parts():
        del part["MIME-Version"]  # add_alternative copies it into the part; it belongs on the top only
    return msg
