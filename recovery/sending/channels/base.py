"""What every channel adapter accepts and returns: messages in, a provider id out, two kinds of failure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class OutboundEmail:
    message_id: int
    cart_id: int
    step: int
    to: str  # shopper address
    from_addr: str  # e.g. "reminders@cartresq.example.com"
    from_name: str  # the store's name
    subject: str
    html: str
    text: str
    unsubscribe_url: str  # one-click URL: POST = RFC 8058, GET = the unsubscribe page
    unsubscribe_mailto: str  # "mailto:unsubscribe+<token>@cartresq.example.com"
    reply_to: str | None = None
    categories: tuple[str, ...] = ()  # e.g. ("cart-recovery", "step-1")
    #: An account email to a merchant (password reset, test send): no List-Unsubscribe / one-click headers
    #: and no SendGrid unsubscribe group, which belong to marketing mail only (unsubscribe_* are ignored).
    transactional: bool = False


@dataclass(frozen=True)
class OutboundSms:
    message_id: int
    cart_id: int
    step: int
    to: str
    body: str


@dataclass(frozen=True)
class OutboundPush:
    message_id: int
    cart_id: int
    step: int
    subscription: dict[str, Any]  # the browser's PushSubscription JSON (endpoint, keys)
    title: str
    body: str
    url: str


Outbound = OutboundEmail | OutboundSms | OutboundPush


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str


class PermanentSendError(Exception):
    """Never retried: the provider refused this message for good (invalid address, 4xx, duplicate)."""


class TransientSendError(Exception):
    """Retried with backoff: the provider may accept it later (connect failures, 429, 5xx)."""


#: The reason recorded when a request reached the provider and no answer came back.
OUTCOME_UNKNOWN = "outcome_unknown: provider timed out after accepting the request"


class OutcomeUnknown(PermanentSendError):
    """The request was sent and the answer never came (read timeout): the provider may have sent it.

    Never retried, because a retry could send the shopper the same reminder twice. A permanent error, so
    a Sender that knows nothing of it still records it as failed and never retries it.
    """

    def __init__(self, provider: str) -> None:
        super().__init__(OUTCOME_UNKNOWN)
        self.provider = provider


class Channel(Protocol):
    def send(self, message: OutboundEmail | OutboundSms | OutboundPush) -> SendResult: ...
