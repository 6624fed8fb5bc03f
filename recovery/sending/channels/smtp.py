"""Email through any SMTP server (`SMTP_URL`), carrying exactly the MIME message the outbox would write."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from recovery.sending.channels.base import OutboundEmail, PermanentSendError, SendResult, TransientSendError
from recovery.sending.channels.mime import build_email_message


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    implicit_tls: bool = False  # smtps://
    starttls: bool = False  # smtp://...?starttls=1

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        """smtp://user:pass@host:587?starttls=1, smtps://user:pass@host:465, smtp://host:25."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp://user:pass@host:port or smtps://...")
        query = parse_qs(parts.query)
        starttls = query.get("starttls", ["0"])[-1].lower() in ("1", "true", "yes", "")
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 587 if starttls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=implicit,
            starttls=starttls and not implicit,
        )


class SmtpChannel:
    def __init__(
        self,
        config: SmtpConfig,
        *,
        message_domain: str,
        timeout: float = 15.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config, self.message_domain, self.timeout = config, message_domain, timeout
        self.ssl_context = ssl_context or ssl.create_default_context()

    def send(self, message: OutboundEmail) -> SendResult:  # type: ignore[override]
        if not isinstance(message, OutboundEmail):
            raise TypeError(f"SMTP sends email, not {type(message).__name__}")
        try:
            msg = build_email_message(message, message_domain=self.message_domain)
        except ValueError as exc:
            raise PermanentSendError(str(exc)) from exc
        try:
            with self._connect() as smtp:
                if self.config.starttls:
                    smtp.starttls(context=self.ssl_context)
                if self.config.username:
                    smtp.login(self.config.username, self.config.password or "")
                refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise _classify([code for code, _ in exc.recipients.values()], "recipient refused") from exc
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, auth failed, ...
            raise _classify([exc.smtp_code], type(exc).__name__) from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:  # connection lost, timeout, TLS
            raise TransientSendError(f"smtp: {type(exc).__name__}") from exc
        if refused:  # only some recipients refused; we send to one, so this is defensive
            raise _classify([code for code, _ in refused.values()], "recipient refused")
        return SendResult(str(msg["Message-ID"]))

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        if c.implicit_tls:
            return smtplib.SMTP_SSL(c.host, c.port, timeout=self.timeout, context=self.ssl_context)
        return smtplib.SMTP(c.host, c.port, timeout=self.timeout)


def _classify(codes: list[int], what: str) -> Exception:
    """RFC 5321: 4yz is a transient negative reply, 5yz a permanent one."""
    text = f"smtp {','.join(map(str, codes))}: {what}"
    if codes and all(400 <= code < 500 for code in codes):
        return TransientSendError(text)
    return PermanentSendError(text)
