"""The /track rate limits: moving windows, shared through Redis when there is one; in-memory otherwise.

`retry_after` counts one limit (one Redis round trip). `retry_after_all` counts several in order in ONE
round trip: a Lua script doing exactly what the `limits` library's moving window does for each (same keys,
same list layout, same rule), stopping at the first that refuses, so a later limit is counted only if the
earlier ones allowed the request, as separate calls would. The /track inbox path uses it for the per-IP and
per-shop limits of a beacon, which then cost one round trip instead of two.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, RedisStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from recovery.config.settings import Settings

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
        if settings.redis_url:
            storage = storage_from_string(settings.redis_url, socket_timeout=0.25, socket_connect_timeout=0.25)
            self.shared = MovingWindowRateLimiter(storage)
            if isinstance(storage, RedisStorage):
                self._storage = storage
                self._script = storage.get_connection().register_script(_ACQUIRE_ALL)
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
            args: list[float | int] = [time.time()]
            for item, _key in checks:
                args += [item.amount, item.get_expiry()]
            try:
                refused = int(self._script(keys=keys, args=args))
            except Exception as exc:  # the same fallback as retry_after: per process, from here on
                self._warn(exc)
            else:
                if not refused:
                    return None
                item, key = checks[refused - 1]
                return refused - 1, self._wait(self.shared, item, key)  # type: ignore[arg-type]
        for index, (item, key) in enumerate(checks):
            if wait := self.retry_after(item, *key):
                return index, wait
        return None

    def _wait(self, limiter: MovingWindowRateLimiter, item: RateLimitItem, key: tuple[str, ...]) -> int:
        try:
            reset = limiter.get_window_stats(item, NAMESPACE, *key).reset_time
        except Exception:  # storage went away between the two calls
            return int(item.get_expiry())
        return max(1, math.ceil(reset - time.time()))

    def _warn(self, exc: Exception) -> None:
        if time.monotonic() - self._warned_at > 60:
            self._warned_at = time.monotonic()
            log.warning("rate-limit storage unavailable (%s); limiting per process", type(exc).__name__)
