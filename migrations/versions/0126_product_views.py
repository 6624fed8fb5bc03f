"""browse abandonment: product_views (one row per tracker session and product page, with a count)

Revision ID: 0126
Revises: 0125
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import recovery.storage.types

revision = "0126"
down_revision = "0125"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AT = recovery.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "product_views",
        sa.Column("id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.Column("last_at", AT, nullable=False),
        sa.Column("due_at", AT, nullable=False),
        sa.Column("cart_id", ID, nullable=True),
        sa.Column("processed_at", AT, nullable=True),
        sa.ForeignKeyConstraint(["cart_id"], ["carts.id"], name=op.f("fk_product_views_cart_id_carts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_product_views_store_id_stores"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_views")),
        sa.UniqueConstraint("store_id", "sid", "product_id", name=op.f("uq_product_views_store_id_sid_product_id")),
    )
    with op.batch_alter_table("product_views", schema=None) as batch_op:
        batch_op.create_index("ix_product_views_due_at", ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_product_views_cart_id"), ["cart_id"], unique=False)


def downgrade() -> None:
    op.drop_table("product_views")
