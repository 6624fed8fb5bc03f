"""Plans and usage (migration 0120): each store's subscription, its usage per billing period, and which
carts counted (or were held back) in that period. recovery/billing/ is the only writer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from recovery.storage.tables.base import Base, utcnow


class StoreBilling(Base):
    """A store's plan as its payment provider last described it (Shopify Billing API, Stripe, the operator)."""

    __tablename__ = "store_billing"

    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True)
    #: "shopify", "stripe" or "manual" (the operator: Enterprise).
    provider: Mapped[str] = mapped_column(String(16))
    #: recovery.billing.plans key: starter, growth, pro, enterprise.
    plan: Mapped[str] = mapped_column(String(16))
    #: recovery.billing.plans.Status: active, trial, past_due, pending, frozen, cancelled.
    status: Mapped[str] = mapped_column(String(16))
    subscription_id: Mapped[str | None] = mapped_column(String(128))
    customer_id: Mapped[str | None] = mapped_column(String(128))  # Stripe's customer (the portal needs it)
    #: End of the current billing period (Shopify currentPeriodEnd, Stripe current_period_end).
    period_end: Mapped[datetime | None]
    trial_ends_at: Mapped[datetime | None]
    #: Where the 80 % / 100 % notices go (the shop's or the Stripe customer's email). Never logged.
    contact_email: Mapped[str | None] = mapped_column(String(320))
    #: When the provider's latest applied event happened: an older one arriving late changes nothing.
    event_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PlanUsage(Base):
    """One store's usage in one billing period: the counter two dispatchers race on (recovery/billing/usage.py)."""

    __tablename__ = "plan_usage"

    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True)
    period_end: Mapped[datetime] = mapped_column(primary_key=True)
    allowance: Mapped[int] = mapped_column(Integer)
    used: Mapped[int] = mapped_column(Integer, default=0)
    #: Slots the last UPDATE granted (set from the row's old values in the same statement, read by RETURNING).
    granted: Mapped[int] = mapped_column(Integer, default=0)
    #: 80 % / 100 % reached (set once per period), and when the store's contact was emailed about it.
    notice_80_at: Mapped[datetime | None]
    notice_100_at: Mapped[datetime | None]
    notice_80_sent_at: Mapped[datetime | None]
    notice_100_sent_at: Mapped[datetime | None]


class PlanCart(Base):
    """A cart's outcome in a billing period: counted (its sequence started) or held back, and why."""

    __tablename__ = "plan_usage_carts"
    __table_args__ = (Index("ix_plan_usage_carts_store_period", "store_id", "period_end", "outcome"),)

    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), primary_key=True)
    period_end: Mapped[datetime] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    #: "counted" or "held".
    outcome: Mapped[str] = mapped_column(String(8))
    #: For a held cart: recovery.billing.plans.REASONS key ("plan_limit", "no_plan").
    reason: Mapped[str | None] = mapped_column(String(16))
    at: Mapped[datetime]
