"""Run under gevent (as gunicorn's gevent worker does): concurrent /track limit checks through
app/web/track_limits.py's batches on a real Redis; prints what happened as JSON for tests/test_track_limits.py.

Usage: python -m tests.support.limit_batch_probe REDIS_URL
"""

from gevent import monkey

monkey.patch_all()

import dataclasses  # noqa: E402 - after monkey-patching, as in a gevent worker
import json  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402

from app.web.track_limits import TrackLimiter  # noqa: E402
from recovery.config.settings import Settings  # noqa: E402

URL = sys.argv[1]


def limiter(url: str) -> TrackLimiter:
    settings = Settings.from_env({"DATABASE_URL": "sqlite://"})
    return TrackLimiter(dataclasses.replace(settings, redis_url=url, track_ip_limit="10/minute",
                                            track_shop_limit="15/minute"))  # fmt: skip


def together(lim: TrackLimiter, ips: list[str]) -> list[object]:
    def one(ip: str) -> object:
        return lim.retry_after_all((lim.per_ip, ("ip", ip)), (lim.per_shop, ("shop", "probe.myshopify.com")))

    greenlets = [gevent.spawn(one, ip) for ip in ips]
    gevent.joinall(greenlets, raise_error=True)
    return [g.value for g in greenlets]


first, second = limiter(URL), limiter(URL)  # two web processes sharing the windows
report: dict[str, object] = {"batched": first._batches is not None}
# 1. 14 requests at once from one address (limit 10), then 8 from others in a second process (shop limit 15).
report["crowd"] = together(first, ["198.51.100.1"] * 14)
report["calls"], report["requests"] = first._batches.calls, first._batches.requests  # type: ignore[union-attr]
report["others"] = together(second, [f"198.51.100.{i}" for i in range(2, 10)])
# 2. The address over its limit again: answered by this process without a script call.
calls = first._batches.calls  # type: ignore[union-attr]
report["again"] = together(first, ["198.51.100.1"] * 3)
report["again_calls"] = first._batches.calls - calls  # type: ignore[union-attr]
# 3. No Redis: every waiting request falls back to this process's own windows, none hangs or fails.
report["unreachable"] = together(limiter("redis://127.0.0.1:1/0"), ["198.51.100.20"] * 12)
print(json.dumps(report))
