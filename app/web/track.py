"""POST /track: storefront tracker beacons (contract: README, "Storefront tracker").

Cheapest checks first, so a burst is shed before it costs the database anything: the per-IP limit,
content type and size (at most 8 KB + 1 byte is ever read), the schema; then the store (404 unknown or
uninstalled) and its origins (403); only a beacon that passed those counts against the per-shop limit
(refused beacons must not use up a shop's quota), then one short transaction.

A beacon never decides what a message says (recovery/intake/verify.py), and what it may start is limited:
new addresses per IP and per shop (`track_contact_*_limit`), exit codes per IP and per shop and day.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from recovery.sequence.offers import ExitOffers
from recovery.config.settings import Settings
from recovery.storage.tables import utcnow
from recovery.intake.tracking import allowed_origins, apply_beacon, find_store, normalize_origin, origin_known
from recovery.intake.tracking_schema import MAX_BEACON_BYTES, BeaconError, parse_beacon

log = logging.getLogger(__name__)
bp = Blueprint("track", __name__)
LIMITER = "cartresq.track_limiter"
EXIT_OFFERS = "cartresq.exit_offers"
CONTENT_TYPES = ("text/plain", "application/json")  # sendBeacon sends text/plain: no preflight


class TrackLimiter:
    """Moving-window limits, shared through Redis when there is one; in-memory (per process) otherwise.

    If Redis fails, this process falls back to its own in-memory windows rather than refusing or
    waving through everything; the failure is logged at most once a minute.
    """

    def __init__(self, settings: Settings) -> None:
        self.per_ip: RateLimitItem = parse(settings.track_ip_limit)
        self.per_shop: RateLimitItem = parse(settings.track_shop_limit)
        self.contact_ip: RateLimitItem = parse(settings.track_contact_ip_limit)
        self.contact_shop: RateLimitItem = parse(settings.track_contact_shop_limit)
        self.exit_code_ip: RateLimitItem = parse(settings.exit_code_ip_limit)
        self.new_rows_ip: RateLimitItem = parse(settings.new_rows_ip_limit)
        self.local = MovingWindowRateLimiter(MemoryStorage())
        self.shared = None
        if settings.redis_url:
            storage = storage_from_string(settings.redis_url, socket_timeout=0.25, socket_connect_timeout=0.25)
            self.shared = MovingWindowRateLimiter(storage)
        self._warned_at = 0.0

    def retry_after(self, item: RateLimitItem, *key: str) -> int | None:
        """Count one hit; None when allowed, else the seconds until the window has room again."""
        limiter = self.shared or self.local
        try:
            allowed = limiter.hit(item, "track", *key)
        except Exception as exc:  # any storage failure: keep limiting locally
            if time.monotonic() - self._warned_at > 60:
                self._warned_at = time.monotonic()
                log.warning("rate-limit storage unavailable (%s); limiting per process", type(exc).__name__)
            limiter = self.local
            allowed = limiter.hit(item, "track", *key)
        if allowed:
            return None
        try:
            reset = limiter.get_window_stats(item, "track", *key).reset_time
        except Exception:  # storage went away between the two calls
            return int(item.get_expiry())
        return max(1, math.ceil(reset - time.time()))


def new_row_refused(kind: str) -> tuple[Response, int] | None:
    """Count one unauthenticated row of `kind` for this client IP: None while allowed, else the 429."""
    limiter: TrackLimiter = current_app.extensions[LIMITER]
    wait = limiter.retry_after(limiter.new_rows_ip, kind, request.remote_addr or "unknown")
    return _error(429, "too many requests from this address", {"Retry-After": str(wait)}) if wait else None


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    rt = state.app.extensions["cartresq"]
    state.app.extensions[LIMITER] = TrackLimiter(rt.settings)
    # The platform's OfferProvider for exit codes, with a budget short enough for a waiting browser.
    provider = getattr(rt.shopify, "exit_offers", None)
    state.app.extensions[EXIT_OFFERS] = ExitOffers(rt.sessions, provider, daily_cap=rt.settings.exit_code_shop_daily)


@bp.route("/track", methods=["POST", "OPTIONS"])
def track() -> Response | tuple[Response, int] | tuple[Response, int, dict[str, str]]:
    from app.web import runtime

    rt = runtime()
    limiter: TrackLimiter = current_app.extensions[LIMITER]
    wait = limiter.retry_after(limiter.per_ip, "ip", request.remote_addr or "unknown")
    if wait:
        return _error(429, "too many requests from this address", {"Retry-After": str(wait)})
    origin = normalize_origin(request.headers.get("Origin"))
    if request.method == "OPTIONS":
        return _preflight(origin)
    if request.mimetype not in CONTENT_TYPES:
        return _error(415, "send text/plain or application/json")
    if (request.content_length or 0) > MAX_BEACON_BYTES:
        return _error(413, f"a beacon is at most {MAX_BEACON_BYTES} bytes")
    body = request.stream.read(MAX_BEACON_BYTES + 1)  # a lying or absent Content-Length reads no further
    if len(body) > MAX_BEACON_BYTES:
        return _error(413, f"a beacon is at most {MAX_BEACON_BYTES} bytes")
    try:
        beacon = parse_beacon(body)
    except BeaconError as exc:
        return _error(400, str(exc))
    ip = request.remote_addr or "unknown"

    def may_capture() -> bool:  # a new address for a cart: counted per IP first, then per shop
        return (limiter.retry_after(limiter.contact_ip, "contact-ip", ip) is None
                and limiter.retry_after(limiter.contact_shop, "contact-shop", beacon["shop"]) is None)

    try:
        with rt.sessions.begin() as session:
            store = find_store(session, beacon["shop"], lock=True)
            if store is None:
                return _error(404, "unknown shop")
            if origin is None or origin not in allowed_origins(store):
                log.info("beacon for %s refused: origin %s not allowed", store.domain, origin or "missing")
                return _error(403, "origin not allowed for this shop")
            wait = limiter.retry_after(limiter.per_shop, "shop", beacon["shop"])  # only what passed the above
            if wait:
                return _error(429, "too many requests for this shop", {"Retry-After": str(wait)})
            applied = apply_beacon(session, store, beacon, utcnow(), rt.timing, may_capture)
    except BeaconError as exc:  # raised before commit: the transaction rolled back, nothing written
        return _error(400, str(exc))
    answer = applied.answer
    if applied.wants_code is not None and limiter.retry_after(limiter.exit_code_ip, "exit-code-ip", ip):
        answer = applied.wants_code.fallback  # this address had its codes today: no new one
    elif applied.wants_code is not None:  # committed already: no transaction is open during the platform call
        try:
            answer = current_app.extensions[EXIT_OFFERS].answer(applied.wants_code)
        except Exception:  # whatever fails, the shopper still gets an answer (the fallback), never a 5xx
            log.exception("exit code for store %s failed", applied.wants_code.store_id)
    response = jsonify(answer) if answer is not None else Response(status=204)
    return _cors(response, origin)


def _preflight(origin: str | None) -> Response | tuple[Response, int]:
    """Only application/json senders preflight; the body (and so the shop) is not known yet."""
    from app.web import runtime

    if origin is None:
        return _error(403, "Origin header required")
    with runtime().sessions() as session:
        if not origin_known(session, origin):
            return _error(403, "origin not allowed")
    response = Response(status=204)
    response.headers.update({
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "7200",  # Chromium's cap; browsers cache the answer that long
    })
    return _cors(response, origin)


def _cors(response: Response, origin: str) -> Response:
    response.headers["Access-Control-Allow-Origin"] = origin  # echoed, never "*"
    response.headers["Vary"] = "Origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def _error(status: int, reason: str, headers: dict[str, Any] | None = None) -> tuple[Response, int]:
    response = jsonify(error=reason)
    response.headers.update(headers or {})
    response.headers["Cache-Control"] = "no-store"
    return response, status
