"""Shopify's side of offers: `discountCodeBasicCreate` / `discountCodeDelete` through the Admin API."""

from __future__ import annotations

import dataclasses
import logging
import secrets
from datetime import datetime, timedelta
from decimal import Decimal

from connectors.shopify.admin import AdminClient, AdminError
from connectors.shopify.tokens import NeedsReauth, has_usable_token
from recovery.storage.crypto import Vault
from recovery.storage import tables as t
from connectors.shopify.auth import TokenError
from recovery.sequence.offers import IssuedCode, OfferUnavailable
from recovery.storage.tables import utcnow

log = logging.getLogger(__name__)

CREATE = """
mutation CreateRecoveryCode($basicCodeDiscount: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $basicCodeDiscount) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}
"""

USAGE = """
query RecoveryCodeUsage($id: ID!) {
  codeDiscountNode(id: $id) { id codeDiscount { ... on DiscountCodeBasic { asyncUsageCount } } }
}
"""

DELETE = """
mutation DeleteRecoveryCode($id: ID!) {
  discountCodeDelete(id: $id) { deletedCodeDiscountId userErrors { field code message } }
}
"""


def new_code() -> str:
    # 50 random bits in an unambiguous alphabet: unguessable enough for a single-use, short-lived code.
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "CRQ-" + "".join(secrets.choice(alphabet) for _ in range(10))


def code_input(code: str, percent: int, starts_at: datetime, ends_at: datetime) -> dict[str, object]:
    """DiscountCodeBasicInput: one use in total, once per customer, every buyer, whole order."""
    return {
        "title": f"CartResQ recovery {code}",
        "code": code,
        "startsAt": starts_at.isoformat(),
        "endsAt": ends_at.isoformat(),
        "context": {"all": "ALL"},
        "customerGets": {"value": {"percentage": float(Decimal(percent) / 100)}, "items": {"all": True}},
        "appliesOncePerCustomer": True,
        "usageLimit": 1,
        "combinesWith": {"orderDiscounts": False, "productDiscounts": False, "shippingDiscounts": True},
    }


class ShopifyOffers:
    """The OfferProvider for Shopify stores."""

    def __init__(self, admin: AdminClient, vault: Vault) -> None:
        self.admin, self.vault = admin, vault

    def create_code(self, store: t.Store, cart: t.Cart, percent: int, ends_at: datetime) -> IssuedCode:
        if store.platform != "shopify":
            raise OfferUnavailable(f"no discount support for {store.platform}")
        for _ in range(2):  # a code already taken on the shop (astronomically rare) gets one more try
            code = new_code()
            payload = self.call(store, CREATE, {"basicCodeDiscount": code_input(code, percent, utcnow(), ends_at)})
            result = payload.get("discountCodeBasicCreate") or {}
            errors = result.get("userErrors") or []
            node = result.get("codeDiscountNode") or {}
            if not errors and node.get("id"):
                return IssuedCode(code, str(node["id"]))
            if not any((e or {}).get("code") == "TAKEN" for e in errors):
                raise OfferUnavailable("discountCodeBasicCreate refused: " + "; ".join(str(e.get("message")) for e in errors))
        raise OfferUnavailable("no unique code could be made")

    def delete_unused(self, store: t.Store, code: t.DiscountCode) -> str:
        if store.platform != "shopify":  # another platform's code (cleaned up by its own connector)
            raise OfferUnavailable(f"no discount support for {store.platform}")
        if not code.platform_id:
            return "deleted"
        node = self.call(store, USAGE, {"id": code.platform_id}).get("codeDiscountNode")
        if node is None:
            return "deleted"  # already gone on the shop (the merchant deleted it)
        if int(((node.get("codeDiscount") or {}).get("asyncUsageCount")) or 0) > 0:
            return "used"  # the merchant's records keep it
        result = self.call(store, DELETE, {"id": code.platform_id}).get("discountCodeDelete") or {}
        if result.get("userErrors"):
            raise OfferUnavailable("discountCodeDelete refused: " + "; ".join(str(e.get("message")) for e in result["userErrors"]))
        return "deleted"

    def call(self, store: t.Store, query: str, variables: dict[str, object]) -> dict[str, object]:
        # The caller holds a database session (send path, cleanup): take the token from the loaded store
        # instead of opening another one. Refreshing is the periodic job's work (10 min ahead of expiry).
        def token_for(_shop: str) -> str:
            expires = store.access_token_expires_at
            if not has_usable_token(store) or (expires is not None and expires <= utcnow() + timedelta(minutes=1)):
                raise NeedsReauth(f"{store.domain}: no fresh access token")
            return str(self.vault.open(store.credentials)["access_token"])  # type: ignore[arg-type]

        try:
            return dataclasses.replace(self.admin, token_for=token_for).execute(store.domain, query, variables)
        except (AdminError, NeedsReauth, TokenError) as exc:
            raise OfferUnavailable(str(exc)) from None
