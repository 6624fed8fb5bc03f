"""The common cart model every platform connector normalizes into. Pure data: no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


class PayloadError(ValueError):
    """A webhook payload that is JSON but not the shape its platform documents; the message names the field."""


class CartStatus(str, enum.Enum):
    ACTIVE = "active"  # shopper still shopping, or idle for less than the abandonment delay
    ABANDONED = "abandoned"
    RECOVERED = "recovered"  # ordered after one of our messages, within the attribution window
    COMPLETED = "completed"  # ordered without our help
    DELETED = "deleted"  # the platform deleted the checkout


class Channel(str, enum.Enum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"


@dataclass(frozen=True)
class LineItem:
    variant_id: str | None
    product_id: str | None
    title: str
    variant_title: str | None
    quantity: int
    unit_price: Decimal
    sku: str | None = None
    image_url: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "variant_id": self.variant_id,
            "product_id": self.product_id,
            "title": self.title,
            "variant_title": self.variant_title,
            "quantity": self.quantity,
            "unit_price": str(self.unit_price),
            "sku": self.sku,
            "image_url": self.image_url,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> LineItem:
        return cls(
            variant_id=_opt_str(data.get("variant_id")),
            product_id=_opt_str(data.get("product_id")),
            title=str(data["title"]),
            variant_title=_opt_str(data.get("variant_title")),
            quantity=int(data["quantity"]),  # type: ignore[call-overload]
            unit_price=Decimal(str(data["unit_price"])),
            sku=_opt_str(data.get("sku")),
            image_url=_opt_str(data.get("image_url")),
        )


@dataclass(frozen=True)
class Contact:
    platform_customer_id: str | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None
    country: str | None = None
    province: str | None = None
    accepts_email: bool = False
    accepts_sms: bool = False
    orders_count: int | None = None


@dataclass(frozen=True)
class CartSnapshot:
    """The state of one cart or checkout as a platform or the tracker last described it."""

    checkout_token: str | None
    cart_token: str | None
    platform_checkout_id: str | None
    contact: Contact
    line_items: tuple[LineItem, ...]
    currency: str
    subtotal: Decimal
    total: Decimal
    restore_url: str | None
    updated_at: datetime
    created_at: datetime | None = None
    completed_at: datetime | None = None
    source: str = "webhook"
    device: str | None = None
    #: The stored delivery that brought this state (set by intake, not by a normalizer): of two states with the
    #: same `updated_at`, the later-received one is kept.
    delivery_id: int | None = None


@dataclass(frozen=True)
class OrderPlaced:
    platform_order_id: str
    checkout_token: str | None
    cart_token: str | None
    contact: Contact
    currency: str
    total: Decimal
    placed_at: datetime
    name: str | None = None
    source: str | None = None
    #: The order's lines (recommendations: co-purchase counts, never recommending what was bought).
    line_items: tuple[LineItem, ...] = ()
    #: Fulfilled (Shopify orders/fulfilled, WooCommerce "completed"): starts the cross-sell flow.
    fulfilled_at: datetime | None = None
    #: Refunded in full (financial status refunded/voided): no cross-sell.
    refunded: bool = False


@dataclass(frozen=True)
class OrderCancelled:
    platform_order_id: str
    cancelled_at: datetime


@dataclass(frozen=True)
class ConsentChanged:
    """The platform's record of a customer's marketing consent; None means the payload says nothing."""

    customer: CustomerRef
    email: bool | None
    sms: bool | None
    updated_at: datetime


@dataclass(frozen=True)
class CheckoutDeleted:
    platform_checkout_id: str | None
    cart_token: str | None


@dataclass(frozen=True)
class CustomerRef:
    """Who a privacy request is about; platforms sometimes send only the email."""

    platform_customer_id: str | None
    email: str | None
    phone: str | None


@dataclass(frozen=True)
class CustomerRedact:
    customer: CustomerRef
    #: The shop the signed body names (Shopify's `shop_domain`); the worker refuses one that is not the delivery's.
    shop: str | None = None


@dataclass(frozen=True)
class CustomerDataRequest:
    customer: CustomerRef
    request_id: str
    shop: str | None = None


@dataclass(frozen=True)
class ShopRedact:
    shop: str | None = None


@dataclass(frozen=True)
class AppUninstalled:
    pass


@dataclass(frozen=True)
class VariantPrice:
    variant_id: str
    price: Decimal
    compare_at: Decimal | None
    inventory_item_id: str | None
    #: Shopify's inventory_policy "continue": the variant stays purchasable at zero stock.
    oversell: bool = False
    #: Stock carried in the product payload itself (WooCommerce `stock_quantity`); None: not in it.
    available: int | None = None


@dataclass(frozen=True)
class ProductUpdated:
    """A product's variant prices as of `updated_at`, in the shop's currency (the payload states none)."""

    product_id: str
    variants: tuple[VariantPrice, ...]
    updated_at: datetime
    #: X-Shopify-Triggered-At of the delivery; breaks ties between payloads with the same updated_at.
    triggered_at: datetime | None = None
    #: What a recommendation shows of the product (storefront handle for its link, title, first image).
    title: str | None = None
    handle: str | None = None
    image_url: str | None = None
    #: The platform's category ids (WooCommerce `categories`; Shopify's payload names no collections).
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class InventoryChanged:
    """Stock of one inventory item at one location; `available` is None when the item is not tracked."""

    inventory_item_id: str
    location_id: str
    available: int | None
    updated_at: datetime
    triggered_at: datetime | None = None


@dataclass(frozen=True)
class PlanChanged:
    """A payment provider's news about the store's subscription (recovery/billing/subscriptions.py)."""

    provider: str  # "shopify", "stripe", "manual"
    status: str  # recovery.billing.plans: active, trial, past_due, pending, frozen, cancelled
    plan: str | None  # recovery.billing.plans key; None: not named by this event
    subscription_id: str | None = None
    period_end: datetime | None = None
    trial_ends_at: datetime | None = None
    customer_id: str | None = None
    contact_email: str | None = None
    #: When the provider says the change happened (orders late deliveries).
    event_at: datetime | None = None


#: Catalog events: facts for content and checks; they never touch carts.
CATALOG_EVENTS = (ProductUpdated, InventoryChanged)

Event = (
    CartSnapshot | OrderPlaced | OrderCancelled | ConsentChanged | CheckoutDeleted | CustomerRedact
    | CustomerDataRequest | ShopRedact | AppUninstalled | ProductUpdated | InventoryChanged | PlanChanged
)

#: Events applied even to an uninstalled store: privacy law and the platform's lifecycle come first.
LIFECYCLE_EVENTS = (CustomerRedact, CustomerDataRequest, ShopRedact, AppUninstalled)


@dataclass(frozen=True)
class NormalizeResult:
    """What a connector made of one delivery: the event, or why there is none."""

    event: Event | None = None
    skipped: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


def strip_token(token: str | None) -> str | None:
    """Cart tokens are opaque; Shopify's Ajax tokens may carry a `?key=` suffix since 2024."""
    if not token:
        return None
    return token.split("?", 1)[0] or None


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
