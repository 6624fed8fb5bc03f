"""The `track` bench's requests: storefront cart beacons as the tracker sends them (`sendBeacon`, text/plain).

Standard library only: the load generator's processes load this file by path without importing the app.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

SHOP = "velvet-fern.myshopify.com"
TRACK_PATH = "/track"


def cart_token(run_id: str, stream: int, i: int) -> str:
    return f"bench-{run_id}-{stream:04x}-{i:012x}"


def beacon_requests(*, host: str, port: int, path: str, run_id: str, stream: int, shop: str = SHOP,
                    **_ignored: object) -> Callable[[int], bytes]:
    """Request i of `stream`: a `cart` beacon for a cart of its own (a new row, as a shopper's first add to
    cart makes), from the shop's own origin, as raw HTTP bytes. The bare endpoint gets the same bytes."""
    ts = int(time.time() * 1000)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: Mozilla/5.0 (bench)\r\nAccept: */*\r\n"
        f"Origin: https://{shop}\r\nContent-Type: text/plain;charset=UTF-8\r\n"
    ).encode()

    def make(i: int) -> bytes:
        body = json.dumps({
            "v": 1, "shop": shop, "sid": f"{run_id}{stream:04x}{i:012x}", "type": "cart", "ts": ts,
            "page": "product", "device": "mobile", "tz": "America/New_York",
            "cart": {"token": cart_token(run_id, stream, i), "currency": "USD", "total": 7355, "count": 3, "items": [
                {"variant_id": 46310287540521, "product_id": 8812309201, "quantity": 2, "price": 2495,
                 "title": "Driftwood Mug", "sku": "DWM-SND"},
                {"variant_id": 46310287540999, "product_id": 8812309207, "quantity": 1, "price": 2365,
                 "title": "Linen Tea Towel"},
            ]},
        }, separators=(",", ":")).encode()  # fmt: skip
        return b"".join((head, b"Content-Length: ", str(len(body)).encode(), b"\r\n\r\n", body))

    return make
