"""Email through SendGrid's v3 Mail Send API, over plain HTTP so tests can point it at a local server."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from recovery.sending.channels.base import OutboundEmail, OutcomeUnknown, PermanentSendError, SendResult
from recovery.sending.channels.http import DEFAULT_TIMEOUT, post, raise_for_status

# The same validation as the .eml path, so both adapters refuse the same messages.
from recovery.sending.channels.mime import _address, _list_unsubscribe

API_BASE = "https://api.sendgrid.com"
#: Provider id prefix of a send whose answer never came (no X-Message-Id to record).
UNCONFIRMED = "sendgrid-unconfirmed:"


class SendGridChannel:
    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = API_BASE,
        asm_group_id: int | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        on_outcome_unknown: Callable[[int], None] | None = None,
    ) -> None:
        self.asm_group_id = asm_group_id
        # message id → record delivery_status "unknown" (the event webhook settles it later)
        self.on_outcome_unknown = on_outcome_unknown
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        )

    def close(self) -> None:
        self._client.close()

    def send(self, message: OutboundEmail) -> SendResult:  # type: ignore[override]
        if not isinstance(message, OutboundEmail):
            raise TypeError(f"SendGrid sends email, not {type(message).__name__}")
        try:
            body = self.body(message)
        except ValueError as exc:
            raise PermanentSendError(str(exc)) from exc
        try:
            response = post(self._client, "sendgrid", "/v3/mail/send", content=json.dumps(body).encode())
        except OutcomeUnknown:
            # SendGrid had the whole request and said nothing. It almost always accepted it, and its event
            # webhook will say so (processed/delivered/dropped/bounce, matched by our message_id custom arg),
            # so the message counts as sent with delivery unknown rather than risking a second copy.
            if self.on_outcome_unknown is not None:
                self.on_outcome_unknown(message.message_id)
            return SendResult(f"{UNCONFIRMED}{message.message_id}")
        raise_for_status("sendgrid", response, _errors(response))
        if response.status_code != 202:
            raise PermanentSendError(f"sendgrid {response.status_code}: unexpected answer to mail send")
        # X-Message-Id is the prefix of every event's sg_message_id for this message.
        return SendResult(response.headers.get("X-Message-Id") or f"sendgrid:{message.message_id}")

    def body(self, m: OutboundEmail) -> dict[str, object]:
        """The v3 mail/send JSON. custom_args values must be strings; they come back on every event."""
        for address in (m.to, m.from_addr, *([m.reply_to] if m.reply_to else [])):
            _address(address)  # ValueError for anything but one plain user@domain
        custom_args = {"message_id": str(m.message_id), "cart_id": str(m.cart_id), "step": str(m.step)}
        body: dict[str, object] = {
            "personalizations": [{"to": [{"email": m.to}]}],
            "from": {"email": m.from_addr, "name": m.from_name},
            "subject": m.subject,
            # SendGrid requires text/plain first, then text/html.
            "content": [{"type": "text/plain", "value": m.text}, {"type": "text/html", "value": m.html}],
            "custom_args": custom_args,
        }
        if not m.transactional:  # marketing mail only: an account email has nothing to unsubscribe from
            body["headers"] = {
                "List-Unsubscribe": str(_list_unsubscribe(m.unsubscribe_url, m.unsubscribe_mailto)),
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
        if m.reply_to:
            body["reply_to"] = {"email": m.reply_to}
        if m.categories:
            body["categories"] = [c[:255] for c in m.categories[:10]]  # SendGrid's limits
        if self.asm_group_id is not None and not m.transactional:
            body["asm"] = {"group_id": self.asm_group_id}
        return body


def _errors(response: httpx.Response) -> str:
    """SendGrid's error shape: {"errors": [{"message": ..., "field": ..., "help": ...}]}."""
    try:
        errors = response.json().get("errors") or []
        return "; ".join(
            str(e.get("message", "")) + (f" ({e['field']})" if e.get("field") else "") for e in errors
        )
    except (ValueError, AttributeError, TypeError):
        return response.reason_phrase or "error"
