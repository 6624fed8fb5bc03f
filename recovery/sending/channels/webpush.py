"""Web push through pywebpush (RFC 8291 encryption, RFC 8292 VAPID) to the browser's push service."""

from __future__ import annotations

import json
from collections.abc import Callable

import requests
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from recovery.sending.channels.base import OutboundPush, OutcomeUnknown, PermanentSendError, SendResult
from recovery.sending.channels.http import ProviderBusy, retry_after
from recovery.sending.netguard import DeadlineSession, PrivateAddress, push_endpoint_allowed

#: Seconds: (connect, read), passed straight to requests.
TIMEOUT = (3.0, 10.0)
#: Seconds the push service keeps an undelivered notification: a reminder a day late is not worth showing.
TTL = 12 * 3600


class SubscriptionGone(PermanentSendError):
    """404/410 from the push service: the browser dropped the subscription; the caller deletes it."""


class WebPushChannel:
    def __init__(
        self,
        vapid_private_key: str,
        vapid_subject: str,
        *,
        on_gone: Callable[[str], None] | None = None,
        on_outcome_unknown: Callable[[int], None] | None = None,
        timeout: tuple[float, float] = TIMEOUT,
        allow_private: bool = False,
    ) -> None:
        self._vapid = Vapid.from_string(private_key=vapid_private_key)
        self.subject = (
            vapid_subject if vapid_subject.startswith(("mailto:", "https:")) else f"mailto:{vapid_subject}"
        )
        self.on_gone, self.on_outcome_unknown, self.timeout = on_gone, on_outcome_unknown, timeout
        #: Local development and tests (CARTRESQ_ALLOW_PRIVATE_HOSTS): endpoints on this machine too.
        self.allow_private = allow_private
        # Only public addresses (checked on the connected socket), no redirects, a total deadline.
        self._session = DeadlineSession(allow_private=allow_private, deadline=sum(timeout) + 2)

    def send(self, message: OutboundPush) -> SendResult:  # type: ignore[override]
        if not isinstance(message, OutboundPush):
            raise TypeError(f"web push sends push notifications, not {type(message).__name__}")
        endpoint = message.subscription.get("endpoint")
        keys = message.subscription.get("keys") or {}
        if not isinstance(endpoint, str) or not endpoint.startswith("https://") and not local_endpoint(endpoint):
            raise PermanentSendError("push subscription has no https endpoint")
        if not push_endpoint_allowed(endpoint) and not (self.allow_private and local_endpoint(endpoint)):
            raise PermanentSendError("push endpoint is not on a known push service")
        if not isinstance(keys, dict) or not keys.get("p256dh") or not keys.get("auth"):
            raise PermanentSendError("push subscription has no keys")
        payload = json.dumps({"title": message.title, "body": message.body, "url": message.url})
        try:
            response = webpush(
                {"endpoint": endpoint, "keys": keys},
                payload,
                vapid_private_key=self._vapid,
                vapid_claims={"sub": self.subject},
                timeout=self.timeout,  # type: ignore[arg-type]  # requests takes (connect, read)
                ttl=TTL,
                # RFC 8030 Topic: a later reminder for the cart replaces one the browser has not fetched yet.
                headers={"Urgency": "normal", "Topic": f"cart-{message.cart_id}"},
                requests_session=self._session,
            )
        except WebPushException as exc:
            raise self._failure(endpoint, exc.response) from None  # the exception's text holds the body
        except PrivateAddress as exc:
            raise PermanentSendError(f"push endpoint refused: {exc}") from None
        except requests.ReadTimeout as exc:  # the push service had the whole request: it may show it
            if self.on_outcome_unknown is not None:
                self.on_outcome_unknown(message.message_id)
            raise OutcomeUnknown("push") from exc
        except requests.Timeout as exc:  # connect timeout: nothing reached the push service
            raise ProviderBusy(f"push: timed out ({type(exc).__name__})") from exc
        except requests.RequestException as exc:
            raise ProviderBusy(f"push: connection failed ({type(exc).__name__})") from exc
        except ValueError as exc:  # keys that are not valid P-256 points / base64
            raise PermanentSendError(f"push subscription keys unusable: {type(exc).__name__}") from exc
        location = getattr(response, "headers", {}).get("Location")
        return SendResult(location or f"push:{message.message_id}")

    def _failure(self, endpoint: str, response: requests.Response | None) -> Exception:
        status = response.status_code if response is not None else 0
        if status in (404, 410):
            if self.on_gone is not None:
                self.on_gone(endpoint)
            return SubscriptionGone(f"push {status}: subscription expired or unsubscribed")
        if status == 429 or status >= 500 or status == 0:
            after = retry_after(response.headers.get("Retry-After")) if response is not None else None
            return ProviderBusy(f"push {status}: push service unavailable", after)
        return PermanentSendError(f"push {status}: refused by the push service")


def local_endpoint(endpoint: str) -> bool:
    """This machine: the tests' fake push service (plain http allowed only there)."""
    return endpoint.startswith(("http://127.0.0.1:", "http://localhost:", "https://127.0.0.1:", "https://localhost:"))
