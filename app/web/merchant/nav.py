"""The merchant app's navigation: (endpoint, label), in menu order. Pages add their entry here."""

from __future__ import annotations

NAV: list[tuple[str, str]] = [
    ("merchant.home", "Overview"),
    ("merchant.performance", "Performance"),
    ("merchant.carts", "Carts"),
    ("merchant.setup", "Setup guide"),
    ("merchant.flow", "Flow"),
    ("merchant.templates", "Templates"),
    ("merchant.settings", "Settings"),
    ("merchant.status", "Store status"),
    ("merchant.billing", "Plan"),  # shown only where billing applies (app/web/merchant/billing.py)
]
