"""verified items: what the platform says a tracker cart's lines are (title, price, image, URL), cached

Revision ID: 0111
Revises: 0110
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import recovery.storage.types

revision = "0111"
down_revision = "0110"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = recovery.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "verified_items",
        sa.Column("id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("item_key", sa.String(length=64), nullable=False),
        sa.Column("found", sa.Boolean(), nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=True),
        sa.Column("variant_title", sa.String(length=255), nullable=True),
        sa.Column("price", recovery.storage.types.Money(precision=18, scale=4), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("image_url", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("checked_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_verified_items_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verified_items")),
        sa.UniqueConstraint("store_id", "item_key", name=op.f("uq_verified_items_store_id_item_key")),
    )


def downgrade() -> None:
    op.drop_table("verified_items")
