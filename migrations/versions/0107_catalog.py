"""catalog facts: variant prices and inventory levels

Revision ID: 0107
Revises: 0106
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import recovery.storage.types

revision = "0107"
down_revision = "0106"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = recovery.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "variant_prices",
        sa.Column("id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("variant_id", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("inventory_item_id", sa.String(length=64), nullable=True),
        sa.Column("price", recovery.storage.types.Money(precision=18, scale=4), nullable=False),
        sa.Column("compare_at", recovery.storage.types.Money(precision=18, scale=4), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("oversell", sa.Boolean(), nullable=False),
        sa.Column("platform_updated_at", TIME, nullable=False),
        sa.Column("triggered_at", TIME, nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_variant_prices_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_variant_prices")),
        sa.UniqueConstraint("store_id", "variant_id", name=op.f("uq_variant_prices_store_id_variant_id")),
    )
    with op.batch_alter_table("variant_prices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_variant_prices_store_inventory_item", ["store_id", "inventory_item_id"], unique=False
        )
    op.create_table(
        "inventory_levels",
        sa.Column("id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("inventory_item_id", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("available", sa.Integer(), nullable=True),
        sa.Column("platform_updated_at", TIME, nullable=False),
        sa.Column("triggered_at", TIME, nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_inventory_levels_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventory_levels")),
        sa.UniqueConstraint(
            "store_id",
            "inventory_item_id",
            "location_id",
            name=op.f("uq_inventory_levels_store_id_inventory_item_id_location_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("inventory_levels")
    with op.batch_alter_table("variant_prices", schema=None) as batch_op:
        batch_op.drop_index("ix_variant_prices_store_inventory_item")
    op.drop_table("variant_prices")
