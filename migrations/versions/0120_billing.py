"""plans and billing: each store's subscription, usage per billing period, carts counted or held back

Revision ID: 0120
Revises: 0118
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import recovery.storage.types

revision = "0120"
down_revision = "0118"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = recovery.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "store_billing",
        sa.Column("store_id", ID, nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("plan", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("subscription_id", sa.String(length=128), nullable=True),
        sa.Column("customer_id", sa.String(length=128), nullable=True),
        sa.Column("period_end", TIME, nullable=True),
        sa.Column("trial_ends_at", TIME, nullable=True),
        sa.Column("contact_email", sa.String(length=320), nullable=True),
        sa.Column("event_at", TIME, nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_store_billing_store_id_stores"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("store_id", name=op.f("pk_store_billing")),
    )
    op.create_table(
        "plan_usage",
        sa.Column("store_id", ID, nullable=False),
        sa.Column("period_end", TIME, nullable=False),
        sa.Column("allowance", sa.Integer(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("granted", sa.Integer(), nullable=False),
        sa.Column("notice_80_at", TIME, nullable=True),
        sa.Column("notice_100_at", TIME, nullable=True),
        sa.Column("notice_80_sent_at", TIME, nullable=True),
        sa.Column("notice_100_sent_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_plan_usage_store_id_stores"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("store_id", "period_end", name=op.f("pk_plan_usage")),
    )
    op.create_table(
        "plan_usage_carts",
        sa.Column("cart_id", ID, nullable=False),
        sa.Column("period_end", TIME, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=True),
        sa.Column("at", TIME, nullable=False),
        sa.ForeignKeyConstraint(["cart_id"], ["carts.id"], name=op.f("fk_plan_usage_carts_cart_id_carts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_plan_usage_carts_store_id_stores"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("cart_id", "period_end", name=op.f("pk_plan_usage_carts")),
    )
    op.create_index("ix_plan_usage_carts_store_period", "plan_usage_carts", ["store_id", "period_end", "outcome"])


def downgrade() -> None:
    op.drop_index("ix_plan_usage_carts_store_period", table_name="plan_usage_carts")
    op.drop_table("plan_usage_carts")
    op.drop_table("plan_usage")
    op.drop_table("store_billing")
