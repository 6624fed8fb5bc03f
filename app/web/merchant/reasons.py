"""Reason codes in words: the one mapping every merchant page uses (messages, carts, status).

`words(code)` never shows a raw code to a merchant when it knows it; an unknown code is shown as it is,
prefixed so that it reads as a technical note rather than a sentence.
"""

from __future__ import annotations

import re

from babel import Locale

_FIXED = {
    "missing_postal_address": "Not emailed: the store has no postal address yet (the law requires one in every "
                              "marketing email). Add it in the Setup guide.",
    "no_email_consent": "Not emailed: this store asks for marketing consent, and the shopper did not give it",
    "email_consent_withdrawn": "Not emailed: the shopper withdrew marketing consent",
    "no SMS consent": "No text message: the shopper did not agree to texts",
    "no_allowed_send_time": "Not sent: no allowed time was left in the shopper's local hours",
    "sms_window_expired": "No text message: the legal texting hours ran out before it could go",
    "shopper_cap_past_useful_time": "Not sent: the shopper already had a message recently (frequency cap)",
    "quiet_hours_past_useful_time": "Not sent: the store's quiet hours lasted past the message's useful time",
    "email_cap_reached": "Not emailed: this shopper reached the email limit",
    "sms_cap_reached": "No text message: this shopper reached the text message limit",
    "push_cap_reached": "No notification: this shopper reached the notification limit",
    "order_receipt_pending": "Waiting: an order may have just been placed; checking before sending",
    "shopper_cap": "Waiting: the shopper had a message recently (frequency cap)",
    "quiet_hours": "Waiting: it is night or quiet hours where the shopper is",
    "unsubscribed": "Stopped: the shopper unsubscribed",
    "outcome_unknown": "Unknown: the provider did not answer after accepting it; not retried, so it is never sent twice",
}
_PREFIXES = (
    ("rescheduled: ", "Moved later. "),
    ("cancelled: ", "Cancelled. "),
    ("bot:", "Not sent: the cart looks automated ("),
)


def _region(code: str) -> str:
    try:
        return str(Locale("en").territories.get(code.upper(), code))
    except Exception:  # pragma: no cover - Babel data always loads
        return code


def words(code: str | None) -> str:
    """A reason as a merchant reads it."""
    if not code:
        return ""
    if code in _FIXED:
        return _FIXED[code]
    if match := re.fullmatch(r"no_email_consent_region_([A-Z]{2})", code):
        region = match.group(1)
        where = "the UK" if region == "GB" else _region(region)
        return f"Not emailed: shoppers in {where} need marketing consent"
    for prefix, said in _PREFIXES:
        if code.startswith(prefix):
            rest = code[len(prefix):]
            return said + (words(rest) if prefix != "bot:" else rest + ")")
    if code.startswith("cannot compose"):
        return "Not sent: the message could not be built (" + code.partition(": ")[2] + ")"
    return f"Technical reason: {code}"
