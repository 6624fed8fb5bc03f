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
    """Retried with backoff: the provider may accept it later (timeouts, 5xx, 429)."""


class Channel(Protocol):
    def send(self, message: OutboundEmail | OutboundSms | OutboundPush) -> SendResult: ...
