"""SQLAlchemy models. Alembic migrations are the only source of the schema; a test checks they agree.

Every model is `recovery.storage.tables.X` (`from recovery import tables as t`); the modules split them by subject.
"""

from recovery.storage.tables.accounts import (
    AccountSession,
    AccountStore,
    AccountToken,
    MerchantAccount,
    SignInFailure,
    StoreCopy,
)
from recovery.storage.tables.base import NAMING, Base, utcnow
from recovery.storage.tables.billing import PlanCart, PlanUsage, StoreBilling
from recovery.storage.tables.core import (
    Cart,
    Customer,
    ExperimentAssignment,
    Order,
    RecoveryMessage,
    SendDecision,
    Store,
    WebhookDelivery,
)
from recovery.storage.tables.flows import (
    FlowEvent, FlowGuard, FlowSignal, OrderItem, PlatformRecommendation, ProductPair, ProductStat, ProductView,
    TrackerVisitor,
)
from recovery.storage.tables.figures import DailyFigure, FigureMark
from recovery.storage.tables.shopper import (
    Consent,
    DataExport,
    PushSubscription,
    ShopperSend,
    Suppression,
    TrackEvent,
    TrackInbox,
)
from recovery.storage.tables.store import (
    DiscountCode,
    InventoryLevel,
    OAuthState,
    VariantPrice,
    VerifiedItem,
    WooActivation,
    WooConnection,
    WooWebhook,
)

__all__ = [
    "AccountSession",
    "AccountStore",
    "AccountToken",
    "MerchantAccount",
    "SignInFailure",
    "StoreCopy",
    "Base",
    "Cart",
    "Consent",
    "Customer",
    "DailyFigure",
    "DataExport",
    "DiscountCode",
    "ExperimentAssignment",
    "FlowEvent",
    "FlowGuard",
    "FlowSignal",
    "OrderItem",
    "ProductPair",
    "ProductStat",
    "ProductView",
    "PlatformRecommendation",
    "TrackerVisitor",
    "FigureMark",
    "InventoryLevel",
    "NAMING",
    "OAuthState",
    "PlanCart",
    "PlanUsage",
    "Order",
    "PushSubscription",
    "RecoveryMessage",
    "SendDecision",
    "ShopperSend",
    "Store",
    "StoreBilling",
    "Suppression",
    "TrackEvent",
    "TrackInbox",
    "VariantPrice",
    "VerifiedItem",
    "WebhookDelivery",
    "WooActivation",
    "WooConnection",
    "WooWebhook",
    "utcnow",
]
