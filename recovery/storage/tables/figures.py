"""Pre-aggregated daily figures per store (migration 0118): what the merchant's Performance page reads.

`DailyFigure` holds, per store and local day of abandonment (the store's time zone), one row per
(step, channel) of the funnel and one row per cart currency (step 0) of cart-level figures.
`FigureMark` is the to-do list that keeps them right: database triggers (migration 0118) append a mark
(store, abandonment time) in the same transaction as every change that moves a figure, and
`recovery.measure.figures.refresh` recounts the marked days from the base tables (idempotent: a recount).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from recovery.storage.tables.base import Base
from recovery.storage.types import Id


class DailyFigure(Base):
    __tablename__ = "daily_figures"

    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True)
    #: The day the carts were abandoned, in the store's time zone (the cohort every figure counts).
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    #: Sequence step (1, 2, ...) for funnel rows; 0 for the cart-level row.
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: email / sms / push for funnel rows; "" for the cart-level row.
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    #: The carts' currency on the cart-level row; "" on funnel rows.
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    # funnel rows: messages planned for these carts, and how far they got
    planned: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    opened: Mapped[int] = mapped_column(Integer, default=0)
    clicked: Mapped[int] = mapped_column(Integer, default=0)
    #: Messages whose cart was recovered by an order placed after the message went out.
    ordered: Mapped[int] = mapped_column(Integer, default=0)
    # cart-level rows
    abandoned: Mapped[int] = mapped_column(Integer, default=0)
    recovered: Mapped[int] = mapped_column(Integer, default=0)
    #: Sum of the recovered carts' orders (not cancelled, in the carts' currency).
    recovered_revenue: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    treated_carts: Mapped[int] = mapped_column(Integer, default=0)
    treated_ordered: Mapped[int] = mapped_column(Integer, default=0)
    holdout_carts: Mapped[int] = mapped_column(Integer, default=0)
    holdout_ordered: Mapped[int] = mapped_column(Integer, default=0)


class FigureMark(Base):
    """A day whose figures changed: (store, a UTC instant in it). Append-only; refresh deletes what it recounted."""

    __tablename__ = "figure_marks"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(Id)
    at: Mapped[datetime]
