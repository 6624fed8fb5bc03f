"""What every HTTP provider adapter shares: explicit timeouts, and one mapping from answers to the two failures."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from recovery.sending.channels.base import OutcomeUnknown, PermanentSendError, TransientSendError

#: Connect fast or give up; a provider that accepted the connection gets longer to answer.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class ProviderBusy(TransientSendError):
    """A transient failure with the provider's own idea of when to come back (Retry-After), in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def raise_for_status(
    provider: str, response: httpx.Response, reason: str, permanent: bool | None = None
) -> None:
    """429 and 5xx may succeed later; any other 4xx never will. `reason` is the provider's own words."""
    status = response.status_code
    if status < 400:
        return
    if permanent is None:
        permanent = status != 429 and status < 500 and status != 408
    text = f"{provider} {status}: {reason}"[:480]
    if permanent:
        raise PermanentSendError(text)
    raise ProviderBusy(text, retry_after(response.headers.get("Retry-After")))


def post(client: httpx.Client, provider: str, url: str, **kwargs: object) -> httpx.Response:
    """POST with the client's explicit timeouts.

    Before the request is complete (connect, pool or write timeout, refused connection) the provider cannot
    have acted on it: transient. A read timeout comes after the whole request was sent: the provider may
    have accepted it, so it is OutcomeUnknown and never retried blindly.
    """
    try:
        return client.post(url, **kwargs)  # type: ignore[arg-type]
    except httpx.ReadTimeout as exc:
        raise OutcomeUnknown(provider) from exc
    except httpx.TimeoutException as exc:
        raise ProviderBusy(f"{provider}: timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise ProviderBusy(f"{provider}: connection failed ({type(exc).__name__})") from exc
