"""Reason codes in words: the one mapping every merchant page uses (messages, carts, status).

`words(code)` takes the `reason` stored on a recovery message (recovery/sending/checks.py, recovery/sending/
policy, recovery/sending/send.py, recovery/consent/records.py, ...) and returns a sentence a merchant
understands, e.g. `no_email_consent_region_GB` → "Not emailed: shoppers in the UK need marketing consent".
It never shows a raw code when it knows it; an unknown code is shown as it is, prefixed so that it reads as
a technical note rather than a sentence. Provider errors keep their detail (masked by the caller).
tests/test_reason_words.py finds every code the code base can record and fails when one has no sentence.

`message_name(m)` names a message the way the merchant set it up: "Step 2 (email, value proposition)" for
the abandoned-cart sequence, "Cross-sell (email)" for a triggered flow (whose step is a database id).
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
    "not_yet": "Waiting: not due yet",
    "unsubscribed": "Stopped: the shopper unsubscribed",
    "outcome_unknown": "Unknown: the provider did not answer after accepting it; not retried, so it is never sent twice",
    # what stops a sequence (recovery/intake/carts.py, recovery/sending/checks.py, recovery/consent/...)
    "holdout": "Not sent on purpose: this shopper is in the holdout group that measures the lift",
    "shopper ordered": "Stopped: the shopper ordered",
    "shopper ordered (order receipt not applied)": "Stopped: the shopper ordered (the order is still being recorded)",
    "shopper returned to the cart": "Stopped: the shopper came back to the cart",
    "superseded by a newer cart": "Stopped: the shopper has a newer cart, which gets the reminders instead",
    "checkout deleted": "Stopped: the checkout was deleted on the platform",
    "store uninstalled": "Stopped: the app was uninstalled",
    "customer data redacted": "Stopped: the customer's data was erased at their request",
    "consent withdrawn": "Stopped: the shopper withdrew marketing consent",
    "withdrawn on platform": "Stopped: the shopper withdrew marketing consent on the platform",
    "sms stop": "Stopped: the shopper replied STOP to a text message",
    "address suppressed": "Not sent: this address is blocked (bounce, spam report or unsubscribe)",
    "no email address": "Not emailed: no email address on the cart",
    "no sms address": "No text message: no phone number on the cart",
    "no_push_subscription": "No notification: the shopper's browser did not subscribe",
    "out_of_stock": "Not sent: the items are out of stock",
    "items_not_confirmed": "Not sent: the cart's items could not be confirmed with the store",
    "interrupted mid-send; not resent to avoid a duplicate": "Not resent: sending was interrupted, and resending could have sent it twice",
    "cancelled meanwhile": "Stopped before sending",
    # suppressions that cancel what is pending for the address (recovery/consent/suppress.py)
    "bounced": "Stopped: an earlier email to this address bounced",
    "dropped": "Stopped: the email provider dropped an earlier email to this address",
    "spamreport": "Stopped: the shopper reported an earlier email as spam",
    # the triggered flows' own checks (recovery/flows/checks.py)
    "product bought or in the cart": "Not sent: the shopper has since bought the product or put it in "
                                     "the cart",
    "order cancelled": "Not sent: the order it follows up on was cancelled",
    "order refunded": "Not sent: the order it follows up on was refunded",
    "no_marketing_consent": "Not emailed: recommendations go only to shoppers who subscribed to marketing "
                            "emails, and this one did not",
}
#: The triggered flows by name (recovery/flows), as the Flow and Performance pages call them.
FLOW_NAMES = {"price_drop": "Price drop", "back_in_stock": "Back in stock", "cross_sell": "Cross-sell",
              "browse_abandonment": "Browse abandonment"}
#: `cart is <status>` (recovery/model.py CartStatus): why a cart's pending message stopped.
_CART_IS = {
    "active": "Stopped: the shopper is back in the cart",
    "abandoned": "Stopped: the cart is abandoned again (its messages were planned anew)",
    "recovered": "Stopped: the shopper ordered after one of our messages",
    "completed": "Stopped: the shopper ordered",
    "deleted": "Stopped: the checkout was deleted on the platform",
}
_PREFIXES = (
    ("rescheduled: ", "Moved later. "),
    ("cancelled: ", "Cancelled. "),
    ("bot:", "Not sent: the cart looks automated ("),
)
#: Codes that carry a provider's detail after a fixed prefix: the detail follows the sentence.
_DETAILED = (
    ("provider refused: ", "Not sent: the provider refused it"),
    ("provider unavailable: ", "Waiting to retry: the provider was unavailable"),
    ("gave up after 6 attempts; last: ", "Not sent: gave up after 6 attempts"),
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
            return said + (words(rest) if prefix != "bot:" else rest.replace("_", " ") + ")")
    for prefix, said in _DETAILED:
        if code.startswith(prefix):
            return f"{said} ({code[len(prefix):]})"
    if code.startswith("cart is "):
        return _CART_IS.get(code[8:], f"Stopped: the cart is {code[8:]}")
    if code.endswith(" turned off") and code[:-11] in FLOW_NAMES:
        return f"Not sent: the {FLOW_NAMES[code[:-11]]} flow was turned off"
    if code.startswith("cannot compose"):
        return "Not sent: the message could not be built (" + code.partition(": ")[2] + ")"
    return f"Technical reason: {code}"


def message_name(m: object) -> str:
    """A message as the merchant set it up, never a database id: the sequence's step, or the flow's name."""
    flow, channel = getattr(m, "flow", None), getattr(m, "channel", "")
    if flow and flow != "cart":
        return f"{FLOW_NAMES.get(flow, flow.replace('_', ' ').capitalize())} ({channel})"
    return f"Step {getattr(m, 'step', '')} ({channel}, {str(getattr(m, 'template', '')).replace('_', ' ')})"
