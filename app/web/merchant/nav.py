"""The merchant app's navigation: (endpoint, label), in menu order. Pages add their entry here."""

from __future__ import annotations

NAV: list[tuple[str, str]] = [
    ("merchant.home", "Overview"),
    ("merchant.performance", "Performance"),
    ("merchant.carts", "Carts"),
]
