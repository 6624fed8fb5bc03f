"""The /track rate limits: moving windows, shared through Redis when there is one; in-memory otherwise.

`retry_after` counts one limit (one Redis round trip). `retry_after_all` counts several in order in ONE
round trip: a Lua script doing exactly what the `limits` library's moving window does for each (same keys,
same list layout, same rule), stopping at the first that refuses, so a later limit is counted only if the
earlier ones allowed the request, as separate calls would. The /track inbox path uses it for the per-IP and
per-shop limits of a beacon, which then cost one round trip instead of two.

Under gevent (gunicorn's gevent worker) the `retry_after_all` calls of every request that arrives while one
is in flight go to Redis together in the next one (`_Batches`, as recovery/storage/pggroup.py does for
PostgreSQL): one script call applies each request's checks in turn, exactly as the separate calls would,
atomically. The round trip was a quarter of a worker's busy time under the track bench (py-spy).

A key Redis refused is remembered in this process until its window has room again (the moving window
cannot have room sooner: newer entries only make it fuller), so an address over its limit is answered 429
without a round trip while it keeps sending. Only a first check is answered that way: a later one's
refusal still counts the earlier ones in Redis.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, RedisStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from recovery.config.settings import Settings
from recovery.storage.greenbatch import GreenBatcher

log = logging.getLogger(__name__)
NAMESPACE = "track"

#: limits' acquire_moving_window.lua (amount 1) for each key in turn; the 1-based index of the key that
#: refused, or 0 when every key had room (and each got its entry).
_ACQUIRE_ALL = """
local now = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
    local limit = tonumber(ARGV[2 * i])
    local expiry = tonumber(ARGV[2 * i + 1])
    local entry = redis.call('lindex', key, limit - 1)
    if limit < 1 or (entry and tonumber(entry) >= now - expiry) then
        return i
    end
    redis.call('lpush', key, now)
    redis.call('ltrim', key, 0, limit - 1)
    redis.call('expire', key, expiry)
end
return 0
"""

#: The same for several requests: ARGV = now, then per request its number of checks n and n (limit, expiry)
#: pairs; KEYS = every request's keys in order. One result per request, as _ACQUIRE_ALL's.
_ACQUIRE_BATCH = """
local now = tonumber(ARGV[1])
local results = {}
local k, a = 1, 2
while a <= #ARGV do
    local n = tonumber(ARGV[a])
    a = a + 1
    local refused = 0
    for i = 1, n do
        if refused == 0 then
            local key, limit, expiry = KEYS[k], tonumber(ARGV[a]), tonumber(ARGV[a + 1])
            local entry = redis.call('lindex', key, limit - 1)
            if limit < 1 or (entry and tonumber(entry) >= now - expiry) then
                refused = i
            else
                redis.call('lpush', key, now)
                redis.call('ltrim', key, 0, limit - 1)
                redis.call('expire', key, expiry)
            end
        end
        k, a = k + 1, a + 2
    end
    results[#results + 1] = refused
end
return results
"""
#: Requests per script call at most; more waiting go in the next one.
MAX_BATCH = 64


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
        self._script = None
        self._batches: _Batches | None = None
        #: Redis key → time.time() until which its window is known full (a refusal seen by this process).
        self.full_until: dict[str, float] = {}
        if settings.redis_url:
            storage = storage_from_string(settings.redis_url, socket_timeout=0.25, socket_connect_timeout=0.25)
            self.shared = MovingWindowRateLimiter(storage)
            if isinstance(storage, RedisStorage):
                self._storage = storage
                self._script = storage.get_connection().register_script(_ACQUIRE_ALL)
                if cooperative():
                    self._batches = _Batches(storage.get_connection().register_script(_ACQUIRE_BATCH))
        self._warned_at = 0.0
        #: (shop, origin) → monotonic time until which this process treats the pair as known good (app/web/track.py).
        self.vetted: dict[tuple[str, str | None], float] = {}

    def retry_after(self, item: RateLimitItem, *key: str) -> int | None:
        """Count one hit; None when allowed, else the seconds until the window has room again."""
        limiter = self.shared or self.local
        try:
            allowed = limiter.hit(item, NAMESPACE, *key)
        except Exception as exc:  # any storage failure: keep limiting locally
            self._warn(exc)
            limiter = self.local
            allowed = limiter.hit(item, NAMESPACE, *key)
        return None if allowed else self._wait(limiter, item, key)

    def retry_after_all(self, *checks: tuple[RateLimitItem, tuple[str, ...]]) -> tuple[int, int] | None:
        """Count `checks` in order, stopping at the first refused: None when all allowed, else (index of the
        refusing check, seconds to wait). One Redis round trip; without the script, one call per check."""
        if self._script is not None:
            keys = [self._storage.prefixed_key(item.key_for(NAMESPACE, *key)) for item, key in checks]
            now = time.time()
            if (until := self.full_until.get(keys[0], 0.0)) > now:
                return 0, max(1, math.ceil(until - now))  # still full: Redis would refuse it too
            limits = [(item.amount, item.get_expiry()) for item, _key in checks]
            try:
                if self._batches is not None:
                    refused = self._batches.run(keys, limits)
                else:
                    refused = int(self._script(keys=keys, args=[now, *(x for pair in limits for x in pair)]))
            except Exception as exc:  # the same fallback as retry_after: per process, from here on
                self._warn(exc)
            else:
                if not refused:
                    return None
                item, key = checks[refused - 1]
                reset = self._reset(self.shared, item, key)  # type: ignore[arg-type]
                if reset is None:
                    return refused - 1, int(item.get_expiry())
                if len(self.full_until) > 10_000:
                    self.full_until.clear()
                self.full_until[keys[refused - 1]] = reset
                return refused - 1, max(1, math.ceil(reset - time.time()))
        for index, (item, key) in enumerate(checks):
            if wait := self.retry_after(item, *key):
                return index, wait
        return None

    def _wait(self, limiter: MovingWindowRateLimiter, item: RateLimitItem, key: tuple[str, ...]) -> int:
        reset = self._reset(limiter, item, key)
        return int(item.get_expiry()) if reset is None else max(1, math.ceil(reset - time.time()))

    def _reset(self, limiter: MovingWindowRateLimiter, item: RateLimitItem, key: tuple[str, ...]) -> float | None:
        """When the window of a refused key has room again (its limit-th newest entry leaves it), or None."""
        try:
            return float(limiter.get_window_stats(item, NAMESPACE, *key).reset_time)
        except Exception:  # storage went away between the two calls
            return None

    def _warn(self, exc: Exception) -> None:
        if time.monotonic() - self._warned_at > 60:
            self._warned_at = time.monotonic()
            log.warning("rate-limit storage unavailable (%s); limiting per process", type(exc).__name__)


def cooperative() -> bool:
    """Whether this process runs under gevent's monkey-patching (sockets yield to other greenlets)."""
    from recovery.storage.pggroup import cooperative as patched

    return patched()


class _Batches:
    """The waiting requests' checks in one process, and the greenlet that sends them to Redis together."""

    def __init__(self, script: Any) -> None:
        from gevent.event import AsyncResult

        self._script, self._result = script, AsyncResult
        self._queue: GreenBatcher[tuple[list[str], list[tuple[int, int]], Any]] = GreenBatcher(self._send, MAX_BATCH)
        self.calls = self.requests = 0  # how much grouping happened (tests, diagnosis)

    def run(self, keys: list[str], limits: list[tuple[int, int]]) -> int:
        """The 1-based index of the check that refused, or 0; raises what the script call raised."""
        done = self._result()
        self._queue.put((keys, limits, done))
        return int(done.get())

    def _send(self, batch: list[tuple[list[str], list[tuple[int, int]], Any]]) -> None:
        keys: list[str] = []
        args: list[float | int] = [time.time()]
        for request_keys, limits, _done in batch:
            keys += request_keys
            args.append(len(limits))
            for pair in limits:
                args += pair
        try:
            results = self._script(keys=keys, args=args)
            if not isinstance(results, list) or len(results) != len(batch):
                raise RuntimeError(f"the limit script answered {type(results).__name__} for {len(batch)} requests")
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request, never lost (the flusher lives on)
            for *_, done in batch:
                done.set_exception(exc)
            return
        self.calls += 1
        self.requests += len(batch)
        for (*_, done), result in zip(batch, results, strict=True):
            done.set(result)
