"""A thin WooCommerce REST v3 client: HTTPS, consumer key/secret, explicit timeouts, retried reads.

Not the `woocommerce` package: on plain HTTP it switches to OAuth 1.0a and sends query parameters
twice (platform-facts §8.2), and it has no retries; this is the few calls we make, on `requests`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.util.retry import Retry

from recovery.sending.netguard import DeadlineSession, PrivateAddress

#: (connect, read) seconds: shared hosts are slow, but a dispatcher pass must not hang.
TIMEOUT = (5.0, 30.0)


class WooError(RuntimeError):
    """A call failed; `status` is the HTTP status (None when the store was unreachable), `code` the
    WordPress error code of the body (e.g. `woocommerce_rest_coupon_code_already_exists`)."""

    def __init__(self, message: str, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def normalize_store_url(url: str, *, allow_http: bool = False) -> str:
    """`shop.example.com/` → `https://shop.example.com`; raises ValueError for anything else."""
    url = (url or "").strip()
    if "://" not in url:
        url = "https://" + url  # as WooCommerce itself does for URLs without a scheme
    parts = urlsplit(url)
    if parts.scheme != "https" and not (allow_http and parts.scheme == "http"):
        raise ValueError("the store URL must use https")
    if not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("the store URL must be a plain address such as https://shop.example.com")
    host = parts.hostname.lower() + (f":{parts.port}" if parts.port else "")
    return f"{parts.scheme}://{host}{parts.path.rstrip('/')}"


def store_domain(store_url: str) -> str:
    """What `stores.domain` holds for a WooCommerce store: host (and path, for a store in a folder)."""
    return store_url.split("://", 1)[1]


class WooClient:
    def __init__(
        self,
        store_url: str,
        consumer_key: str,
        consumer_secret: str,
        *,
        allow_http: bool = False,
        query_string_auth: bool = False,
        timeout: tuple[float, float] = TIMEOUT,
        allow_private: bool = False,
        retries: bool = True,
    ) -> None:
        self.base = normalize_store_url(store_url, allow_http=allow_http) + "/wp-json"
        self.timeout = timeout
        # Only idempotent calls are retried on 5xx/429: a repeated POST could create a second webhook.
        retry = Retry(
            total=3,
            backoff_factor=0.5,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET", "PUT", "DELETE"}),
            raise_on_status=False,
        ) if retries else Retry(total=0, connect=0, read=0, redirect=0, status=0, raise_on_status=False)
        # The store URL came from outside: public addresses only (checked on the connected socket), no
        # redirects, a total deadline per call (recovery/sending/netguard.py). allow_private: development and tests.
        self._session = DeadlineSession(
            allow_private=allow_private, deadline=sum(timeout) * (4 if retries else 1) + 5, retries=retry
        )
        self._session.headers["User-Agent"] = "CartResQ/0.1"
        if query_string_auth:  # hosts that strip the Authorization header ("Consumer key is missing")
            self._auth_params = {"consumer_key": consumer_key, "consumer_secret": consumer_secret}
        else:
            self._auth_params = {}
            self._session.auth = (consumer_key, consumer_secret)

    def close(self) -> None:
        self._session.close()

    def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None
    ) -> requests.Response:
        try:
            response = self._session.request(
                method,
                f"{self.base}/{path.lstrip('/')}",
                params={**(params or {}), **self._auth_params},
                json=json,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except (requests.RequestException, PrivateAddress) as exc:
            raise WooError(f"{method} {path}: store unreachable ({type(exc).__name__})") from None
        if response.status_code >= 400:
            code = _error_code(response)
            raise WooError(
                f"{method} {path}: HTTP {response.status_code} {code}".strip(), response.status_code, code
            )
        return response

    # --- the calls we make ---

    def system_status(self) -> dict[str, Any]:
        return dict(self.request("GET", "wc/v3/system_status").json())

    def store_address(self) -> str:
        """The shop's address from WooCommerce's general settings, one line (empty when unset)."""
        values = {row.get("id"): str(row.get("value") or "").strip() for row in self._settings("general")}
        city = " ".join(v for v in (values.get("woocommerce_store_city"), values.get("woocommerce_store_postcode")) if v)
        # "US:CA" is country:state; WooCommerce 9 state codes may carry the country already ("DE:DE-BE")
        country, _, state = values.get("woocommerce_default_country", "").partition(":")
        state = state.removeprefix(f"{country}-") if country else state
        parts = (values.get("woocommerce_store_address"), values.get("woocommerce_store_address_2"), city, state,
                 country)
        return ", ".join(p for p in parts if p)

    def site_title(self) -> str | None:
        """The site's title (Settings › General), from the WordPress REST index `GET /wp-json/`; None if unknown."""
        try:
            index = self.request("GET", "").json()
        except (WooError, ValueError):
            return None
        name = index.get("name") if isinstance(index, dict) else None
        return name.strip()[:255] or None if isinstance(name, str) else None

    def _settings(self, group: str) -> list[dict[str, Any]]:
        rows = self.request("GET", f"wc/v3/settings/{group}").json()
        return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []

    def list_webhooks(self) -> list[dict[str, Any]]:
        return list(self._pages("wc/v3/webhooks", {}))

    def create_webhook(self, *, name: str, topic: str, delivery_url: str, secret: str) -> dict[str, Any]:
        body = {
            "name": name,
            "topic": topic,
            "delivery_url": delivery_url,
            "secret": secret,
            "status": "active",
        }
        return dict(self.request("POST", "wc/v3/webhooks", json=body).json())

    def update_webhook(self, webhook_id: int, **fields: Any) -> dict[str, Any]:
        return dict(self.request("PUT", f"wc/v3/webhooks/{int(webhook_id)}", json=fields).json())

    def delete_webhook(self, webhook_id: int) -> None:
        self.request("DELETE", f"wc/v3/webhooks/{int(webhook_id)}", params={"force": "true"})

    def orders_modified_after(self, since: datetime) -> Iterator[dict[str, Any]]:
        """Every order modified after `since` (UTC), oldest change first."""
        params = {
            "modified_after": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "dates_are_gmt": "true",
            "orderby": "modified",
            "order": "asc",
            "status": "any",
        }
        return self._pages("wc/v3/orders", params)

    def get_product(self, product_id: int) -> dict[str, Any]:
        """A product or a variation by its id (what the storefront cart calls the item's `id`)."""
        return dict(self.request("GET", f"wc/v3/products/{int(product_id)}").json())

    def create_coupon(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.request("POST", "wc/v3/coupons", json=body).json())

    def get_coupon(self, coupon_id: int) -> dict[str, Any]:
        return dict(self.request("GET", f"wc/v3/coupons/{int(coupon_id)}").json())

    def delete_coupon(self, coupon_id: int) -> None:
        # Without force=true coupons (posts) go to the trash, where their code stays taken.
        self.request("DELETE", f"wc/v3/coupons/{int(coupon_id)}", params={"force": "true"})

    def configure_plugin(self, settings: dict[str, Any]) -> None:
        """Hand our plugin its settings (app URL, store key, restore secret) through its REST route."""
        self.request("PUT", "cartresq/v1/settings", json=settings)

    def _pages(self, path: str, params: dict[str, Any], per_page: int = 100) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            response = self.request("GET", path, params={**params, "per_page": per_page, "page": page})
            rows = response.json()
            if not isinstance(rows, list):
                raise WooError(f"GET {path}: expected a list")
            yield from rows
            total_pages = int(response.headers.get("X-WP-TotalPages") or 1)
            if page >= total_pages or not rows:
                return
            page += 1


def _error_code(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("code", ""))[:80] if isinstance(body, dict) else ""
