"""SMS through Twilio's Messages API (form-encoded, basic auth), numbers normalized to E.164."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
import phonenumbers

from recovery.sending.channels.base import OutboundSms, OutcomeUnknown, PermanentSendError, SendResult
from recovery.sending.channels.http import DEFAULT_TIMEOUT, post, raise_for_status

API_BASE = "https://api.twilio.com"

#: Twilio error codes that no retry can fix; 21610 also means the shopper texted STOP to our sender.
UNSUBSCRIBED = 21610
PERMANENT_CODES = {21211, 21214, 21408, 21610, 21612, 21614, 30003, 30005, 30006, 30007}


class RecipientUnsubscribed(PermanentSendError):
    """Twilio 21610: the number opted out of our sender; the caller suppresses it."""


def to_e164(number: str, region: str | None = None) -> str:
    """ValueError unless the number is a valid phone number (a region is needed for national formats)."""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class TwilioSmsChannel:
    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
        base_url: str = API_BASE,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        on_unsubscribed: Callable[[int], None] | None = None,
        on_outcome_unknown: Callable[[int], None] | None = None,
    ) -> None:
        if not (from_number or messaging_service_sid):
            raise ValueError("Twilio needs TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID")
        self.account_sid = account_sid
        self.from_number, self.messaging_service_sid = from_number, messaging_service_sid
        self.status_callback = status_callback
        self.on_unsubscribed = on_unsubscribed  # message id → suppress the number (a STOP we never saw)
        self.on_outcome_unknown = on_outcome_unknown  # message id → record it failed, outcome unknown
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, auth=(account_sid, auth_token)
        )

    def close(self) -> None:
        self._client.close()

    def send(self, message: OutboundSms) -> SendResult:  # type: ignore[override]
        if not isinstance(message, OutboundSms):
            raise TypeError(f"Twilio sends SMS, not {type(message).__name__}")
        try:
            to = to_e164(message.to)
        except ValueError as exc:
            raise PermanentSendError(f"twilio: {exc}") from exc
        form = {"To": to, "Body": message.body}
        # A Messaging Service picks the sender itself (and handles opt-outs per service).
        if self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        else:
            form["From"] = self.from_number  # type: ignore[assignment]
        if self.status_callback:
            form["StatusCallback"] = self.status_callback
        url = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        started = datetime.now(UTC)
        try:
            response = post(self._client, "twilio", url, data=form)
        except OutcomeUnknown:
            # Twilio may have queued it; a second POST would be a second text. Not retried, but looked up.
            sid = self._find_created(to, message.body, started)
            if sid is not None:
                return SendResult(sid)
            if self.on_outcome_unknown is not None:
                self.on_outcome_unknown(message.message_id)
            raise
        code, reason = _error(response)
        if code == UNSUBSCRIBED:
            if self.on_unsubscribed is not None:
                self.on_unsubscribed(message.message_id)
            raise RecipientUnsubscribed(f"twilio {response.status_code}: {reason}"[:480])
        raise_for_status("twilio", response, reason, permanent=True if code in PERMANENT_CODES else None)
        try:
            return SendResult(str(response.json()["sid"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentSendError("twilio: answer without a message sid") from exc

    def _find_created(self, to: str, body: str, since: datetime) -> str | None:
        """After a read timeout: the sid of our message if Twilio's Messages list shows it, else None.

        Newest first, filtered by recipient; ours is the one with our exact body (it holds a signed link
        unique to the message) created since we sent. Absence proves nothing (Twilio may still be
        creating it), so only a match changes the outcome.
        """
        url = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        try:
            response = self._client.get(url, params={"To": to, "PageSize": 20})
            found = response.json().get("messages") if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
        for item in found if isinstance(found, list) else []:
            created = _created_at(item.get("date_created")) if isinstance(item, dict) else None
            if created is not None and created >= since - timedelta(minutes=1) and item.get("body") == body:
                return str(item.get("sid")) if item.get("sid") else None
        return None


def _created_at(value: object) -> datetime | None:
    try:
        when = parsedate_to_datetime(str(value))  # Twilio dates are RFC 2822
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _error(response: httpx.Response) -> tuple[int | None, str]:
    """Twilio's error shape: {"code": 21211, "message": "...", "more_info": "...", "status": 400}."""
    if response.status_code < 400:
        return None, ""
    try:
        doc = response.json()
        code = int(doc["code"]) if doc.get("code") is not None else None
    except (ValueError, AttributeError, TypeError, KeyError):
        return None, response.reason_phrase or "error"
    # Twilio's message quotes the phone number: keep only the code, which says everything.
    return code, f"error {code}" if code else "error"
