"""Why a message was not sent (or was moved), in plain words for merchants: the ONE place for that mapping.

`explain(code)` takes the `reason` stored on a recovery message (recovery/checks.py, recovery/policy,
recovery/sending.py, recovery/consent.py ...) and returns a sentence a merchant understands, e.g.
`no_email_consent_region_GB` → "Not emailed: shoppers in the United Kingdom need marketing consent".
Unknown codes come back as they are (never an error), with underscores turned into spaces; provider
errors keep their detail after the sentence, with any address in it masked by the caller.
"""

from __future__ import annotations

import re

#: Exact codes.
WORDS: dict[str, str] = {
    "holdout": "Not sent on purpose: this shopper is in the holdout group that measures the lift",
    "shopper ordered": "Stopped: the shopper ordered",
    "shopper ordered (order receipt not applied)": "Stopped: the shopper ordered (the order is still being recorded)",
    "shopper returned to the cart": "Stopped: the shopper came back to the cart",
    "superseded by a newer cart": "Stopped: the shopper has a newer cart, which gets the reminders instead",
    "checkout deleted": "Stopped: the checkout was deleted on the platform",
    "store uninstalled": "Stopped: the app was uninstalled",
    "customer data redacted": "Stopped: the customer's data was erased at their request",
    "unsubscribed": "Stopped: the shopper unsubscribed",
    "consent withdrawn": "Stopped: the shopper withdrew marketing consent",
    "email_consent_withdrawn": "Not emailed: the shopper withdrew email consent",
    "no_email_consent": "Not emailed: your consent policy needs marketing consent, and this shopper has not given it",
    "no SMS consent": "No text message: the shopper has not agreed to marketing texts",
    "sms stop": "Stopped: the shopper replied STOP to a text message",
    "address suppressed": "Not sent: this address is blocked (bounce, spam report or unsubscribe)",
    "no email address": "Not emailed: no email address on the cart",
    "no sms address": "No text message: no phone number on the cart",
    "no_push_subscription": "No push notification: the shopper's browser did not subscribe",
    "out_of_stock": "Not sent: the items are out of stock",
    "items_not_confirmed": "Not sent: the cart's items could not be confirmed with the store",
    "missing_postal_address": "Not emailed: add your store's postal address (the law requires it in marketing email)",
    "no_allowed_send_time": "Not sent: quiet hours left no allowed time to send",
    "sms_window_expired": "No text message: too long after the cart was abandoned for a text to be allowed",
    "email_cap_reached": "Not emailed: this cart already got the most emails allowed",
    "sms_cap_reached": "No text message: this cart already got the most texts allowed",
    "push_cap_reached": "No push notification: this cart already got the most notifications allowed",
    "shopper_cap_past_useful_time": "Not sent: the shopper got another message recently, and waiting would have made this one too late",
    "quiet_hours_past_useful_time": "Not sent: quiet hours would have pushed it past the time it is useful",
    "interrupted mid-send; not resent to avoid a duplicate": "Not resent: sending was interrupted, and resending could have sent it twice",
    "cancelled meanwhile": "Stopped before sending",
    "cart is recovered": "Stopped: the cart was recovered",
    "cart is completed": "Stopped: the cart was bought",
    "rescheduled: quiet_hours": "Moved: quiet hours in the shopper's time zone",
    "rescheduled: shopper_cap": "Moved: the shopper got another message recently",
    "rescheduled: not_yet": "Moved: not due yet",
    "rescheduled: order_receipt_pending": "Moved: an order from this shopper is still being recorded",
}

BOTS = {
    "crawler_ua": "a crawler's browser",
    "crawler_address": "a crawler's email address",
    "disposable_domain": "a disposable email address",
    "no_interaction": "no shopper interaction on the storefront",
}

#: Codes that carry a detail after a fixed prefix: (prefix, sentence); the detail follows the sentence.
PREFIXES: tuple[tuple[str, str], ...] = (
    ("provider refused: ", "Not sent: the provider refused it"),
    ("provider unavailable: ", "Waiting to retry: the provider was unavailable"),
    ("gave up after 6 attempts; last: ", "Not sent: gave up after 6 attempts"),
    ("cannot compose: ", "Not sent: the message could not be written"),
)

COUNTRIES = {
    "GB": "the United Kingdom", "DE": "Germany", "FR": "France", "IT": "Italy", "ES": "Spain", "NL": "the Netherlands",
    "BE": "Belgium", "AT": "Austria", "IE": "Ireland", "SE": "Sweden", "DK": "Denmark", "FI": "Finland", "NO": "Norway",
    "PL": "Poland", "PT": "Portugal", "CZ": "Czechia", "GR": "Greece", "HU": "Hungary", "RO": "Romania", "BG": "Bulgaria",
    "HR": "Croatia", "SK": "Slovakia", "SI": "Slovenia", "LT": "Lithuania", "LV": "Latvia", "EE": "Estonia",
    "LU": "Luxembourg", "MT": "Malta", "CY": "Cyprus", "IS": "Iceland", "LI": "Liechtenstein",
}  # fmt: skip

_REGION = re.compile(r"^no_email_consent_region_([A-Z]{2})$")


def explain(code: str | None) -> str:
    """The plain-words sentence for a stored reason ("" for none)."""
    if not code:
        return ""
    if code in WORDS:
        return WORDS[code]
    if m := _REGION.match(code):
        where = COUNTRIES.get(m.group(1), m.group(1))
        return f"Not emailed: shoppers in {where} need marketing consent"
    if code.startswith("bot:"):
        return f"Not sent: the cart looks like a bot's ({BOTS.get(code[4:], code[4:].replace('_', ' '))})"
    if code.startswith("cart is "):
        return f"Stopped: the cart is {code[8:]}"
    for prefix, sentence in PREFIXES:
        if code.startswith(prefix):
            return f"{sentence} ({code[len(prefix):]})"
    if code.startswith("rescheduled: "):
        return "Moved: " + code[13:].replace("_", " ")
    return code.replace("_", " ")
