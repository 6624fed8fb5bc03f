"""recommendations without enough orders and known browsers: platform_recommendations (Shopify's related
products, cached), product_stats.categories (WooCommerce categories), tracker_visitors (a visitor id once tied
to a cart)

Revision ID: 0129
Revises: 0127
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import recovery.storage.types

revision = "0129"
down_revision = "0127"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AT = recovery.storage.types.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "platform_recommendations",
        sa.Column("id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("related", JSON, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("fetched_at", AT, nullable=False),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_platform_recommendations_store_id_stores"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_recommendations")),
        sa.UniqueConstraint("store_id", "product_id", name=op.f("uq_platform_recommendations_store_id_product_id")),
    )
    op.create_table(
        "tracker_visitors",
        sa.Column("id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("vid", sa.String(length=32), nullable=False),
        sa.Column("cart_id", ID, nullable=False),
        sa.Column("seen_at", AT, nullable=False),
        sa.ForeignKeyConstraint(["cart_id"], ["carts.id"], name=op.f("fk_tracker_visitors_cart_id_carts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_tracker_visitors_store_id_stores"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracker_visitors")),
        sa.UniqueConstraint("store_id", "vid", name=op.f("uq_tracker_visitors_store_id_vid")),
    )
    with op.batch_alter_table("tracker_visitors", schema=None) as batch_op:
        batch_op.create_index("ix_tracker_visitors_seen_at", ["seen_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_tracker_visitors_cart_id"), ["cart_id"], unique=False)
    with op.batch_alter_table("product_stats", schema=None) as batch_op:
        batch_op.add_column(sa.Column("categories", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("product_stats", schema=None) as batch_op:
        batch_op.drop_column("categories")
    op.drop_table("tracker_visitors")
    op.drop_table("platform_recommendations")
