"""Admin GraphQL calls: `shopifyapp` sends each one; this decides when to wait, retry or give up.

- cost budget: `extensions.cost.throttleStatus` of the last answer says how many points are left and
  how fast they come back; a call that would not fit waits for them first;
- `THROTTLED` (HTTP 200 with that error code) and HTTP 429 back off (Retry-After when given) and retry;
- transient failures (5xx, network, timeouts) retry with exponential backoff and full jitter;
- permanent ones (other GraphQL errors, 400/401/403/404) raise at once;
- every request has explicit timeouts (the httpx client from `ShopifyConfig.http`).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connectors.shopify.auth import ShopifyConfig

log = logging.getLogger(__name__)

#: What a query is assumed to cost before Shopify has told us (its default single-query cost is ~10).
DEFAULT_COST = 10.0


class AdminError(Exception):
    def __init__(self, message: str, *, permanent: bool, code: str = "") -> None:
        super().__init__(message)
        self.permanent, self.code = permanent, code


@dataclass
class _Budget:
    available: float
    maximum: float
    restore_rate: float
    at: float

    def now_available(self, clock: float) -> float:
        return min(self.maximum, self.available + (clock - self.at) * self.restore_rate)


@dataclass
class AdminClient:
    config: ShopifyConfig
    #: shop → a valid access token (refreshing it first if needed); raises when the store needs re-auth.
    token_for: Callable[[str], str]
    sleep: Callable[[float], None] = time.sleep
    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    _budgets: dict[str, _Budget] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def execute(self, shop: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The response's `data`; raises AdminError (or the token source's NeedsReauth)."""
        last: AdminError | None = None
        for attempt in range(self.max_attempts):
            self._wait_for_budget(shop)
            token = self.token_for(shop)
            with self.config.http() as client:
                result = self.config.app().admin_graphql_request(
                    query,
                    shop=shop.removesuffix(".myshopify.com"),
                    access_token=token,
                    api_version=self.config.api_version,
                    variables=variables,
                    max_retries=0,  # retries are decided here, with backoff the library does not offer
                    http_client=client,
                )
            body = _json(result.response.body)
            self._record_cost(shop, (body or {}).get("extensions") or result.extensions)
            if result.ok:
                return result.data or {}
            delay, last = self._classify(result, body, attempt)
            if last.permanent or attempt == self.max_attempts - 1:
                break
            log.info("shopify %s: %s; retrying in %.2fs", shop, last.code, delay)
            self.sleep(delay)
        assert last is not None
        raise last

    def _classify(self, result: Any, body: dict[str, Any] | None, attempt: int) -> tuple[float, AdminError]:
        status, code = result.response.status, result.log.code
        if code == "graphql_errors":
            errors = (body or {}).get("errors") or []
            if any(_is_throttled(e) for e in errors):
                return self._throttle_delay(body), AdminError("throttled", permanent=False, code="THROTTLED")
            messages = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
            return 0, AdminError(f"GraphQL errors: {messages}"[:500], permanent=True, code="graphql_errors")
        if status == 429:
            # The library's 429 result carries a synthetic response; the real headers are in its log.
            headers = result.http_logs[-1].res.headers if result.http_logs else result.response.headers
            return _retry_after(headers, self._backoff(attempt)), AdminError(
                "rate limited (429)", permanent=False, code="429"
            )
        if code == "network_error" or status >= 500:
            return self._backoff(attempt), AdminError(f"transient failure: {code}", permanent=False, code=code)
        return 0, AdminError(f"request refused: {code} (HTTP {status})", permanent=True, code=code)

    def _backoff(self, attempt: int) -> float:
        # Full jitter: many workers retrying the same shop do not come back in step.
        return self.rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))

    def _throttle_delay(self, body: dict[str, Any] | None) -> float:
        cost = ((body or {}).get("extensions") or {}).get("cost") or {}
        status = cost.get("throttleStatus") or {}
        try:
            needed = float(cost.get("requestedQueryCost", DEFAULT_COST)) - float(status["currentlyAvailable"])
            return min(self.max_delay, max(0.0, needed / float(status["restoreRate"])))
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            return 1.0

    def _record_cost(self, shop: str, extensions: Any) -> None:
        status = ((extensions or {}).get("cost") or {}).get("throttleStatus") if isinstance(extensions, dict) else None
        if not isinstance(status, dict):
            return
        try:
            budget = _Budget(
                float(status["currentlyAvailable"]), float(status["maximumAvailable"]), float(status["restoreRate"]), time.monotonic()
            )
        except (KeyError, TypeError, ValueError):
            return
        with self._lock:
            self._budgets[shop] = budget

    def _wait_for_budget(self, shop: str) -> None:
        with self._lock:
            budget = self._budgets.get(shop)
        if budget is None or budget.restore_rate <= 0:
            return
        missing = DEFAULT_COST - budget.now_available(time.monotonic())
        if missing > 0:
            self.sleep(min(self.max_delay, missing / budget.restore_rate))


def _is_throttled(error: Any) -> bool:
    if not isinstance(error, dict):
        return False
    code = (error.get("extensions") or {}).get("code") if isinstance(error.get("extensions"), dict) else None
    return code == "THROTTLED" or str(error.get("message", "")).lower() == "throttled"


def _retry_after(headers: dict[str, str], fallback: float) -> float:
    value = {k.lower(): v for k, v in headers.items()}.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else fallback
    except ValueError:
        return fallback


def _json(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
