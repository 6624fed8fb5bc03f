"""POST /track: storefront tracker beacons (contract: README, "Storefront tracker").

Cheapest checks first, so a burst is shed before it costs the database anything: the per-IP limit,
content type and size (at most 8 KB + 1 byte is ever read), the schema; then the store (404 unknown or
uninstalled) and its origins (403); only a beacon that passed those counts against the per-shop limit
(refused beacons must not use up a shop's quota), then one short transaction.

With the track inbox (Settings.track_inbox, PostgreSQL) a beacon that needs no answer (`deferrable`: cart,
view, popup shown/closed, checkout steps) is not applied here: the store, origin and INSERT are one
prepared statement (recovery/intake/track_inbox.py) and the dispatcher's track relay applies it. Its per-IP
limit is then counted after the body checks (CPU only; nothing has touched the database yet), together
with the per-shop one in one Redis round trip once this process has seen the (shop, origin) pair pass.

A beacon never decides what a message says (recovery/intake/verify.py), and what it may start is limited:
new addresses per IP and per shop (`track_contact_*_limit`), exit codes per IP and per shop and day.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState

from app.web.track_limits import TrackLimiter
from recovery.sequence.offers import ExitOffers
from recovery.storage.tables import utcnow
from recovery.intake import track_inbox
from recovery.intake.origins import allowed_origins, find_store, normalize_origin, origin_known
from recovery.intake.tracking import apply_beacon
from recovery.intake.tracking_schema import MAX_BEACON_BYTES, BeaconError, parse_beacon

log = logging.getLogger(__name__)
bp = Blueprint("track", __name__)
LIMITER = "cartresq.track_limiter"
EXIT_OFFERS = "cartresq.exit_offers"
CONTENT_TYPES = ("text/plain", "application/json")  # sendBeacon sends text/plain: no preflight


def new_row_refused(kind: str) -> tuple[Response, int] | None:
    """Count one unauthenticated row of `kind` for this client IP: None while allowed, else the 429."""
    limiter: TrackLimiter = current_app.extensions[LIMITER]
    wait = limiter.retry_after(limiter.new_rows_ip, kind, request.remote_addr or "unknown")
    return _error(429, "too many requests from this address", {"Retry-After": str(wait)}) if wait else None


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    rt = state.app.extensions["cartresq"]
    state.app.extensions[LIMITER] = TrackLimiter(rt.settings)
    # Each platform's OfferProvider for exit codes, with a budget short enough for a waiting browser.
    from connectors import offers as platform_offers

    provider = platform_offers.build_exit(rt.settings, rt.sessions, getattr(rt.shopify, "exit_offers", None))
    state.app.extensions[EXIT_OFFERS] = ExitOffers(rt.sessions, provider, daily_cap=rt.settings.exit_code_shop_daily)


@bp.route("/track", methods=["POST", "OPTIONS"])
def track() -> Response | tuple[Response, int] | tuple[Response, int, dict[str, str]]:
    from app.web import runtime

    rt = runtime()
    limiter: TrackLimiter = current_app.extensions[LIMITER]
    ip = request.remote_addr or "unknown"
    # With the inbox, a POST's per-IP limit is counted after the (CPU-only) body checks, together with the
    # per-shop one when it can be (one Redis round trip); still before anything touches the database.
    ip_counted = not (rt.settings.track_inbox and request.method == "POST")
    if ip_counted and (wait := limiter.retry_after(limiter.per_ip, "ip", ip)):
        return _error(429, "too many requests from this address", {"Retry-After": str(wait)})
    origin = normalize_origin(request.headers.get("Origin"))
    if request.method == "OPTIONS":
        return _preflight(origin)

    def refused(status: int, reason: str) -> tuple[Response, int]:
        """A body refused before the limits were counted still counts against its address (else one client
        could keep the parser busy without end): over the limit, the answer is the 429."""
        if not ip_counted and (wait := limiter.retry_after(limiter.per_ip, "ip", ip)):
            return _error(429, "too many requests from this address", {"Retry-After": str(wait)})
        return _error(status, reason)

    if request.mimetype not in CONTENT_TYPES:
        return refused(415, "send text/plain or application/json")
    if (request.content_length or 0) > MAX_BEACON_BYTES:
        return refused(413, f"a beacon is at most {MAX_BEACON_BYTES} bytes")
    body = request.stream.read(MAX_BEACON_BYTES + 1)  # a lying or absent Content-Length reads no further
    if len(body) > MAX_BEACON_BYTES:
        return refused(413, f"a beacon is at most {MAX_BEACON_BYTES} bytes")
    try:
        beacon = parse_beacon(body)
    except BeaconError as exc:
        return refused(400, str(exc))
    if not ip_counted and rt.engine.dialect.name == "postgresql" and track_inbox.deferrable(beacon):
        return _to_inbox(rt, limiter, beacon, origin, ip)
    if not ip_counted and (wait := limiter.retry_after(limiter.per_ip, "ip", ip)):
        return _error(429, "too many requests from this address", {"Retry-After": str(wait)})

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


#: How long a (shop, origin) pair this process stored a beacon for stays vetted (TrackLimiter.vetted): its
#: per-shop limit is then counted before the statement (with the per-IP one: one round trip) instead of
#: after a dry run of it. A pair refused since (store uninstalled, origin removed) is counted once more
#: against its shop, then forgotten.
VETTED_FOR = 60.0


def _to_inbox(rt: Any, limiter: TrackLimiter, beacon: dict[str, Any], origin: str | None, ip: str) -> Any:
    """A beacon that needs no answer: checked (store 404, origin 403, limits 429) and stored in the inbox
    in one prepared statement (recovery/intake/track_inbox.py); the dispatcher's track relay applies it."""
    pair, now = (beacon["shop"], origin), utcnow()
    per_ip, per_shop = (limiter.per_ip, ("ip", ip)), (limiter.per_shop, ("shop", beacon["shop"]))
    if limiter.vetted.get(pair, 0.0) > time.monotonic():
        if refused := limiter.retry_after_all(per_ip, per_shop):
            return _limited(*refused)
        outcome, _ = track_inbox.record(rt.engine, beacon, origin, now)
    else:
        if refused := limiter.retry_after_all(per_ip):
            return _limited(*refused)
        outcome, _ = track_inbox.record(rt.engine, beacon, origin, now, store=False)
        if outcome == "allowed":  # only what passed the store and origin checks counts against the shop
            if refused := limiter.retry_after_all(per_shop):
                return _limited(1, refused[1])
            outcome, _ = track_inbox.record(rt.engine, beacon, origin, now, trusted=True)
    if outcome == "unknown":
        limiter.vetted.pop(pair, None)
        return _error(404, "unknown shop")
    if outcome == "forbidden":
        limiter.vetted.pop(pair, None)
        log.info("beacon for %s refused: origin %s not allowed", beacon["shop"], origin or "missing")
        return _error(403, "origin not allowed for this shop")
    if len(limiter.vetted) > 10_000:
        limiter.vetted.clear()
    limiter.vetted[pair] = time.monotonic() + VETTED_FOR
    return _cors(Response(status=204), origin)  # type: ignore[arg-type]


def _limited(index: int, wait: int) -> tuple[Response, int]:
    reason = "too many requests for this shop" if index else "too many requests from this address"
    return _error(429, reason, {"Retry-After": str(wait)})


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
