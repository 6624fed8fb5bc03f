"""Reconciliation: what a missed webhook left out, read back through GraphQL and applied the same way.

Abandoned checkouts and orders updated since the last run are turned into the REST shapes our
webhook normalizer reads, then go through `connectors.normalize` → `recovery.intake.carts.apply_event`
under the store's lock, exactly like a delivery. Freshness rules (`updated_at`) keep it from rolling
anything back, and recording an order twice is a no-op, so overlapping runs are harmless.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import connectors
from connectors.shopify import domains
from connectors.shopify.admin import AdminClient
from recovery.storage import locks
from recovery.measure import metrics
from recovery.storage import tables as t
from recovery.intake.carts import apply_event
from recovery.storage.tables import utcnow
from recovery.sequence.timing import Timing

log = logging.getLogger(__name__)

#: Runs overlap by this much: webhooks and clocks are not exact, re-applying is harmless.
OVERLAP = timedelta(minutes=10)
#: The first run of a store looks back this far.
FIRST_LOOKBACK = timedelta(days=2)
PAGE = 50
MAX_PAGES = 20

CHECKOUTS = """
query RecoverCheckouts($query: String, $after: String) {
  abandonedCheckouts(first: %d, after: $after, query: $query, sortKey: CREATED_AT) {
    nodes {
      id abandonedCheckoutUrl createdAt updatedAt completedAt
      customer { id email phone firstName lastName locale
        emailMarketingConsent { marketingState } smsMarketingConsent { marketingState } }
      shippingAddress { firstName countryCodeV2 provinceCode }
      subtotalPriceSet { presentmentMoney { amount currencyCode } }
      totalPriceSet { presentmentMoney { amount currencyCode } }
      lineItems(first: 100) { nodes { title variantTitle quantity sku
        variant { id } product { id } originalUnitPriceSet { presentmentMoney { amount currencyCode } } } }
    }
    pageInfo { hasNextPage endCursor }
  }
}
""" % PAGE

ORDERS = """
query RecoverOrders($query: String, $after: String) {
  orders(first: %d, after: $after, query: $query, sortKey: UPDATED_AT) {
    nodes {
      id name email phone createdAt processedAt cancelledAt checkoutToken cartToken sourceName
      customer { id email phone firstName lastName }
      totalPriceSet { presentmentMoney { amount currencyCode } }
    }
    pageInfo { hasNextPage endCursor }
  }
}
""" % PAGE

_RECOVER_URL = re.compile(r"/checkouts/(?:ac/)?([^/?#]+)/recover")


@dataclass
class Report:
    checkouts: int = 0
    orders: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def filled(self) -> int:
        """Checkouts and orders we first heard of here: each one is a webhook that did not arrive."""
        return self.outcomes.get("cart created", 0) + self.outcomes.get("order recorded", 0)


def reconcile_store(
    sessions: sessionmaker[Session], admin: AdminClient, store_id: int, timing: Timing = Timing()
) -> Report:
    started = utcnow()
    with sessions() as session:
        store = session.get(t.Store, store_id)
        if store is None or not store.active:
            return Report()
        shop, since = store.domain, (store.reconciled_at - OVERLAP) if store.reconciled_at else started - FIRST_LOOKBACK
    report = Report()
    search = f"updated_at:>='{since.strftime('%Y-%m-%dT%H:%M:%SZ')}'"
    for nodes in _pages(admin, shop, CHECKOUTS, "abandonedCheckouts", search):
        report.checkouts += len(nodes)
        _apply(sessions, store_id, "checkouts/update", [checkout_payload(sessions, store_id, n) for n in nodes], timing, report)
    for nodes in _pages(admin, shop, ORDERS, "orders", search):
        report.orders += len(nodes)
        _apply(sessions, store_id, "orders/create", [order_payload(n) for n in nodes], timing, report)
    # A domain the merchant added since install starts sending beacons without anyone touching settings.
    domains.sync_origins_quietly(sessions, admin, store_id)
    # Our subscriptions live in shopify.app.toml, which `webhookSubscriptions` does not list (it shows
    # only API-made ones): what reconciliation had to fill in is the evidence that deliveries are lost.
    issue = (
        f"{report.filled} checkouts or orders reached CartResQ only through reconciliation: "
        "webhooks from this shop may not be arriving" if report.filled else None
    )
    with sessions.begin() as session:
        store = session.get(t.Store, store_id)
        if store is not None:
            store.reconciled_at = started
            store.platform_issue = issue
    if issue:
        metrics.reconciliation_fills("shopify", report.filled)
        log.warning("store %s: %d events filled in by reconciliation", store_id, report.filled)
    log.info("store %s reconciled: %s checkouts, %s orders", store_id, report.checkouts, report.orders)
    return report


def _pages(admin: AdminClient, shop: str, query: str, root: str, search: str) -> Iterator[list[dict[str, Any]]]:
    after = None
    for _ in range(MAX_PAGES):
        connection = admin.execute(shop, query, {"query": search, "after": after}).get(root) or {}
        yield list(connection.get("nodes") or [])
        info = connection.get("pageInfo") or {}
        if not info.get("hasNextPage"):
            return
        after = info.get("endCursor")


def _apply(
    sessions: sessionmaker[Session], store_id: int, topic: str, payloads: list[dict[str, Any]], timing: Timing, report: Report
) -> None:
    for payload in payloads:
        with sessions.begin() as session:
            # The store's lock, as for a delivery: one store's events apply one at a time.
            store = session.scalar(select(t.Store).where(t.Store.id == store_id).with_for_update(**locks.STORE_EXCLUSIVE))
            if store is None or not store.active:
                return
            try:
                result = connectors.normalize("shopify", topic, payload)
            except ValueError as exc:
                outcome = "rejected"
                log.warning("store %s: reconciled %s rejected: %s", store_id, topic, exc)
            else:
                outcome = apply_event(session, store, result.event, timing) if result.event else (result.skipped or "no event")
        key = outcome.split(" (")[0]
        report.outcomes[key] = report.outcomes.get(key, 0) + 1


def _numeric(gid: Any) -> str | None:
    return str(gid).rsplit("/", 1)[-1] if gid else None


def _money(money_set: Any) -> tuple[str | None, str | None]:
    money = (money_set or {}).get("presentmentMoney") or {}
    return money.get("amount"), money.get("currencyCode")


def checkout_payload(sessions: sessionmaker[Session], store_id: int, node: dict[str, Any]) -> dict[str, Any]:
    """An AbandonedCheckout as the REST `checkouts/update` shape the webhook normalizer reads."""
    checkout_id = _numeric(node.get("id"))
    url = str(node.get("abandonedCheckoutUrl") or "")
    match = _RECOVER_URL.search(url)
    token = match.group(1) if match else None
    if token is None:
        # No token in the URL: reuse the cart a webhook made for this checkout id, else a stable stand-in.
        with sessions() as session:
            token = session.scalar(
                select(t.Cart.checkout_token).where(t.Cart.store_id == store_id, t.Cart.platform_checkout_id == checkout_id)
            ) or f"gid-{checkout_id}"
    customer = node.get("customer") or {}
    address = node.get("shippingAddress") or {}
    subtotal, currency = _money(node.get("subtotalPriceSet"))
    total, _ = _money(node.get("totalPriceSet"))
    items = []
    for item in (node.get("lineItems") or {}).get("nodes") or []:
        price, _ = _money(item.get("originalUnitPriceSet"))
        items.append(
            {
                "title": item.get("title"),
                "variant_title": item.get("variantTitle"),
                "quantity": item.get("quantity"),
                "sku": item.get("sku"),
                "price": price,
                "variant_id": _numeric((item.get("variant") or {}).get("id")),
                "product_id": _numeric((item.get("product") or {}).get("id")),
            }
        )
    return {
        "id": checkout_id,
        "token": token,
        "email": customer.get("email"),
        "phone": customer.get("phone"),
        "customer": {
            "id": _numeric(customer.get("id")),
            "email": customer.get("email"),
            "first_name": customer.get("firstName"),
            "last_name": customer.get("lastName"),
            "phone": customer.get("phone"),
        }
        if customer
        else None,
        "customer_locale": customer.get("locale"),
        "shipping_address": {
            "first_name": address.get("firstName"),
            "country_code": address.get("countryCodeV2"),
            "province_code": address.get("provinceCode"),
        }
        if address
        else None,
        "buyer_accepts_marketing": ((customer.get("emailMarketingConsent") or {}).get("marketingState")) == "SUBSCRIBED",
        "buyer_accepts_sms_marketing": ((customer.get("smsMarketingConsent") or {}).get("marketingState")) == "SUBSCRIBED",
        "presentment_currency": currency,
        "subtotal_price": subtotal,
        "total_price": total,
        "line_items": items,
        "abandoned_checkout_url": url or None,
        "created_at": node.get("createdAt"),
        "updated_at": node.get("updatedAt"),
        "completed_at": node.get("completedAt"),
    }


def order_payload(node: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL Order as the REST `orders/create` shape."""
    customer = node.get("customer") or {}
    total, currency = _money(node.get("totalPriceSet"))
    return {
        "id": _numeric(node.get("id")),
        "name": node.get("name"),
        "email": node.get("email"),
        "phone": node.get("phone"),
        "checkout_token": node.get("checkoutToken"),
        "cart_token": node.get("cartToken"),
        "created_at": node.get("createdAt"),
        "processed_at": node.get("processedAt"),
        "source_name": node.get("sourceName"),
        "customer": {
            "id": _numeric(customer.get("id")),
            "email": customer.get("email"),
            "phone": customer.get("phone"),
            "first_name": customer.get("firstName"),
            "last_name": customer.get("lastName"),
        }
        if customer
        else None,
        "total_price_set": {"presentment_money": {"amount": total, "currency_code": currency}},
    }


def reconcile_due(
    sessions: sessionmaker[Session], admin: AdminClient, every: timedelta, timing: Timing = Timing(), now: datetime | None = None
) -> dict[int, str]:
    """The periodic job: every active Shopify store with a usable token, not reconciled for `every`."""
    cutoff = (now or utcnow()) - every
    with sessions() as session:
        ids = session.scalars(
            select(t.Store.id).where(
                t.Store.platform == "shopify",
                t.Store.uninstalled_at.is_(None),
                t.Store.needs_reauth_at.is_(None),
                t.Store.credentials.is_not(None),
                (t.Store.reconciled_at.is_(None)) | (t.Store.reconciled_at < cutoff),
            )
        ).all()
    outcomes = {}
    for store_id in ids:
        try:
            report = reconcile_store(sessions, admin, store_id, timing)
            outcomes[store_id] = f"{report.checkouts} checkouts, {report.orders} orders"
        except Exception as exc:  # one store's failure (auth, API) must not stop the others
            log.warning("store %s: reconciliation failed: %s", store_id, type(exc).__name__)
            outcomes[store_id] = f"failed: {type(exc).__name__}"
    return outcomes
