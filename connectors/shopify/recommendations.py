"""Shopify's own related products (recovery/flows/related.py's RelatedSource), from the shop's storefront:
`GET https://<shop>.myshopify.com/recommendations/products.json?product_id=…&limit=4&intent=related` (the Ajax
Product Recommendations API: public, no token; the Storefront API's `productRecommendations` would need a
storefront access token we do not hold).

Outbound only to the shop's own domains: the request goes to the store's myshopify domain; one redirect is
followed only to the shop's own storefront domains (the primary domain a myshopify host redirects to, recorded
as `allowed_origins`), over https. Each call is time-bounded (recovery/sending/netguard.py: public addresses
only, no automatic redirects, a total deadline). Only ids are read from the answer: what a message shows
comes from the catalog facts we recorded.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from recovery.config.store_settings import effective
from recovery.flows.related import RelatedUnavailable
from recovery.sending.netguard import DeadlineSession, PrivateAddress
from recovery.storage import tables as t

LIMIT = 4
DEADLINE = 5.0
#: Four products of Shopify's JSON are a few kB; anything much longer is not an answer to read into memory.
MAX_BYTES = 256 * 1024
_SHOP = re.compile(r"[a-z0-9][a-z0-9-]*\.myshopify\.com")


class ShopifyRelated:
    def __init__(self, *, allow_private: bool = False, base: str | None = None, deadline: float = DEADLINE) -> None:
        """`base`: send to this address instead, with the shop's Host header (tests, as SHOPIFY_ADMIN_BASE)."""
        self.allow_private, self.base, self.deadline = allow_private, base, deadline

    def related(self, store: t.Store, product_id: str) -> list[str]:
        if not _SHOP.fullmatch(store.domain or "") or not product_id.isdigit():
            raise RelatedUnavailable("not a myshopify domain or not a product id")
        if store.credentials is None:  # not (or no longer) installed: its storefront is none of our business
            raise RelatedUnavailable("the app is not installed")
        url = f"https://{store.domain}/recommendations/products.json?product_id={product_id}&limit={LIMIT}&intent=related"
        with DeadlineSession(allow_private=self.allow_private, deadline=self.deadline, max_bytes=MAX_BYTES) as http:
            response = self._get(http, url)
            if response.is_redirect:
                target = urljoin(url, response.headers.get("Location") or "")
                if not _own(store, target):
                    raise RelatedUnavailable(f"redirect off the shop's domains ({response.status_code})")
                response = self._get(http, target)
        if response.status_code in (404, 422):  # "Product not found" / "Invalid parameter error": none to give
            return []
        if response.status_code != 200:
            raise RelatedUnavailable(f"HTTP {response.status_code}")
        try:
            body: Any = response.json()
        except ValueError:
            raise RelatedUnavailable("answer is not JSON") from None
        products = body.get("products") if isinstance(body, dict) else None
        if not isinstance(products, list):
            raise RelatedUnavailable("answer has no products list")
        return [str(p["id"]) for p in products
                if isinstance(p, dict) and str(p.get("id") or "").isdigit() and p.get("available") is not False]

    def _get(self, http: DeadlineSession, url: str) -> requests.Response:
        parts = urlsplit(url)
        target, headers = url, {"Accept": "application/json"}
        if self.base:  # the test fake: same path and query, the shop's Host header
            target = f"{self.base}{parts.path}?{parts.query}"
            headers["Host"] = parts.netloc
        try:
            return http.get(target, headers=headers)
        except PrivateAddress as exc:
            raise RelatedUnavailable(str(exc)) from None
        except requests.RequestException as exc:
            raise RelatedUnavailable(type(exc).__name__) from None


def _own(store: t.Store, url: str) -> bool:
    """https, on the shop's myshopify domain or one of its storefront domains (allowed_origins)."""
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.username or parts.password or parts.port not in (None, 443):
        return False
    own = {store.domain} | {urlsplit(o).hostname for o in effective(store.settings or {})["allowed_origins"]}
    return (parts.hostname or "") in own
