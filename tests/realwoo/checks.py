"""What the real-store tests read back: CartResQ's carts and deliveries, and a shopper's browser page."""

from __future__ import annotations

from typing import Any

from tests.realwoo.store import RealWoo

#: The plugin's marketing opt-in box: the classic checkout's field and the Checkout block's additional field.
OPT_IN = '#cartresq_marketing_opt_in, input[id$="cartresq-marketing-opt-in"]'


def processed(rw: RealWoo) -> int:
    return int(rw.rows("SELECT count(*) FROM webhook_deliveries WHERE processed_at IS NULL")[0][0]) == 0


def watch(page: Any) -> list[str]:
    """Each request answered 4xx/5xx (store or app), console error and uncaught exception on `page`."""
    problems: list[str] = []

    def answered(r: Any) -> None:
        if r.status >= 400:
            problems.append(f"{r.status} {r.request.method} {r.url}")

    page.on("response", answered)
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"exception: {e}"))
    return problems


def store_api_cart(page: Any) -> dict[str, Any]:
    return dict(page.evaluate("fetch('/wp-json/wc/store/v1/cart').then(r => r.json())"))


def carts(rw: RealWoo, tokens: list[str]) -> dict[str, Any]:
    rows = rw.rows("SELECT checkout_token, cart_token, email, status, total, restore_url FROM carts "
                   "WHERE checkout_token = ANY(:t)", t=tokens)
    return {r.checkout_token: r for r in rows}
