"""Shopify authentication: session tokens, token exchange, refresh (all `shopifyapp`) and the code grant.

`shopifyapp` builds every URL as https://{shop}/admin/...; its `http_client` argument is the seam: we
pass an httpx client with explicit timeouts whose transport, when SHOPIFY_ADMIN_BASE is set, sends
the request to that base instead (the Host header still names the shop, as a reverse proxy would).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode, urlparse

import httpx
from shopify_app import ShopifyApp

from connectors.shopify.webhooks import SHOP_DOMAIN

#: Seconds a callback's `timestamp` may be off (Shopify's Node library uses the same 90 s).
HMAC_TOLERANCE = 90
#: Errors after which only the merchant can help: the refresh token is dead or the app is gone.
PERMANENT_TOKEN_ERRORS = frozenset(
    {"invalid_grant", "refresh_token_expired", "invalid_client", "invalid_subject_token", "configuration_error"}
)


@dataclass(frozen=True)
class ShopifyConfig:
    api_key: str
    api_secret: str
    api_secret_old: str | None = None
    admin_base: str | None = None
    api_version: str = "2026-10"
    scopes: str = ""
    app_url: str = "http://127.0.0.1:8000"
    timeout: float = 10.0

    @property
    def redirect_uri(self) -> str:
        return f"{self.app_url}/auth/shopify/callback"

    def app(self) -> ShopifyApp:
        return ShopifyApp(self.api_key, self.api_secret, self.api_secret_old)

    def http(self) -> httpx.Client:
        """A client with explicit timeouts on every phase; the caller closes it."""
        timeout = httpx.Timeout(self.timeout, connect=min(5.0, self.timeout))
        transport: httpx.BaseTransport = (
            _BaseUrlTransport(self.admin_base) if self.admin_base else httpx.HTTPTransport(retries=0)
        )
        return httpx.Client(timeout=timeout, transport=transport)

    def base_url(self, shop: str) -> str:
        return self.admin_base or f"https://{shop}"


class _BaseUrlTransport(httpx.BaseTransport):
    """Sends https://{shop}/... to the configured base, keeping path, query and the shop's Host header."""

    def __init__(self, base: str) -> None:
        self._base = httpx.URL(base)
        self._inner = httpx.HTTPTransport(retries=0)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme=self._base.scheme, host=self._base.host, port=self._base.port)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@dataclass(frozen=True)
class Tokens:
    access_token: str
    scope: str
    refresh_token: str | None
    expires_at: datetime | None
    refresh_expires_at: datetime | None


class TokenError(Exception):
    """A token call failed; `permanent` means retrying cannot help (re-authorization is needed)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.permanent = code in PERMANENT_TOKEN_ERRORS


@dataclass(frozen=True)
class SessionCheck:
    """The result of checking an embedded request: the shop, or the response to send instead."""

    ok: bool
    shop: str | None
    status: int
    headers: Mapping[str, str]
    reason: str
    id_token: Any = None


def verify_session(config: ShopifyConfig, url: str, headers: Mapping[str, str], patch_path: str) -> SessionCheck:
    """Session token from `Authorization: Bearer` or the `id_token` query parameter (initial load).

    `shopifyapp` checks HS256 with our secret (old one too while rotating), exp/nbf with a 10 s leeway
    and aud == API key; we add the anchored shop rule on `dest` and that `iss` names the same shop.
    """
    request = {"method": "GET", "headers": dict(headers), "url": url, "body": ""}
    result = config.app().verify_app_home_req(request, patch_path)  # type: ignore[arg-type]
    if not result.ok or result.id_token is None:
        return SessionCheck(False, None, result.response.status, dict(result.response.headers), result.log.code)
    claims = result.id_token.claims
    dest = urlparse(str(claims.get("dest", ""))).hostname or ""
    issuer = urlparse(str(claims.get("iss", ""))).hostname or ""
    if not SHOP_DOMAIN.match(dest) or issuer != dest or "exp" not in claims:
        return SessionCheck(False, None, 401, {}, "session token names no valid shop")
    return SessionCheck(True, dest.lower(), 200, dict(result.response.headers), "verified", result.id_token)


def exchange_session_token(config: ShopifyConfig, id_token: Any) -> Tokens:
    """Embedded first contact: session token → expiring offline access token (`expiring=1`)."""
    with config.http() as client:
        result = config.app().exchange_using_token_exchange("offline", id_token=id_token, expiring=True, http_client=client)
    if not result.ok or result.access_token is None:
        raise TokenError(result.log.code, result.log.detail)
    return _tokens(result.access_token)


def refresh(config: ShopifyConfig, shop: str, refresh_token: str) -> Tokens:
    """Trade the refresh token for a new pair; Shopify invalidates the old refresh token."""
    token = {
        "shop": shop.removesuffix(".myshopify.com"),
        "refresh_token": refresh_token,
        "expires": "",  # we decide when to refresh; an empty expiry makes the library always call
        "refresh_token_expires": "",
        "access_mode": "offline",
    }
    with config.http() as client:
        result = config.app().refresh_token_exchanged_access_token(token, http_client=client)
    if not result.ok or result.access_token is None:
        raise TokenError(result.log.code, result.log.detail)
    return _tokens(result.access_token)


def _tokens(token: Any) -> Tokens:
    return Tokens(
        access_token=token.token,
        scope=token.scope or "",
        refresh_token=token.refresh_token or None,
        expires_at=_parse(token.expires),
        refresh_expires_at=_parse(token.refresh_token_expires),
    )


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


# --- Authorization-code grant (non-embedded use). `shopifyapp` leaves it out, so it is written here.


def authorize_url(config: ShopifyConfig, shop: str, state: str) -> str:
    query = {"client_id": config.api_key, "scope": config.scopes, "redirect_uri": config.redirect_uri, "state": state}
    # `grant_options[]` empty = offline access (Shopify's Node library sends it the same way).
    return f"https://{shop}/admin/oauth/authorize?{urlencode(query)}&grant_options[]="


def query_hmac(params: Mapping[str, str], secret: str) -> str:
    """Hex HMAC-SHA256 of the sorted query without `hmac`/`signature`, form-encoded (space → %20)."""
    pairs = sorted((k, v) for k, v in params.items() if k not in ("hmac", "signature"))
    message = "&".join(f"{_form(k)}={_form(v)}" for k, v in pairs)
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _form(value: str) -> str:
    return quote(value, safe="*").replace("~", "%7E")


def check_callback_query(config: ShopifyConfig, params: Mapping[str, str], now: float | None = None) -> str | None:
    """None when the query is Shopify's, else the reason it is not."""
    given = params.get("hmac", "")
    if not given:
        return "missing hmac"
    secrets = [config.api_secret] + ([config.api_secret_old] if config.api_secret_old else [])
    received = given.lower().encode("utf-8", "replace")  # bytes: compare_digest refuses non-ASCII str
    if not any(hmac.compare_digest(query_hmac(params, s).encode(), received) for s in secrets):
        return "hmac does not match"
    try:
        timestamp = int(params.get("timestamp", ""))
    except ValueError:
        return "missing or invalid timestamp"
    if abs((time.time() if now is None else now) - timestamp) > HMAC_TOLERANCE:
        return "timestamp is more than 90 s away from now"
    if not SHOP_DOMAIN.match(params.get("shop", "")):
        return "shop is not a valid *.myshopify.com domain"
    return None


def exchange_code(config: ShopifyConfig, shop: str, code: str) -> Tokens:
    """POST the code to the shop's token endpoint, asking for an expiring offline token."""
    body = {"client_id": config.api_key, "client_secret": config.api_secret, "code": code, "expiring": "1"}
    try:
        with config.http() as client:
            response = client.post(f"https://{shop}/admin/oauth/access_token", json=body, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise TokenError("network_error", type(exc).__name__) from None
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code != 200 or not isinstance(data, dict) or not data.get("access_token"):
        error = data.get("error") if isinstance(data, dict) else None
        raise TokenError("invalid_grant" if response.status_code in (400, 401) else "exchange_error", str(error or response.status_code))
    now = datetime.now(UTC)
    expires_in, refresh_in = data.get("expires_in"), data.get("refresh_token_expires_in")
    return Tokens(
        access_token=str(data["access_token"]),
        scope=str(data.get("scope") or ""),
        refresh_token=data.get("refresh_token") or None,
        expires_at=now + timedelta(seconds=int(expires_in)) if expires_in is not None else None,
        refresh_expires_at=now + timedelta(seconds=int(refresh_in)) if refresh_in is not None else None,
    )
