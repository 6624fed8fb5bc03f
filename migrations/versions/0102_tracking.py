"""storefront tracker: track_events, carts.tracked_at and carts.contact_source

Revision ID: 0102
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import recovery.storage.types

revision = "0102"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tracked_at", recovery.storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("contact_source", sa.String(length=32), nullable=True))

    op.create_table(
        "track_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("cart_id", ID, nullable=True),
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("detail", sa.String(length=64), nullable=True),
        sa.Column("at", recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cart_id"], ["carts.id"], name=op.f("fk_track_events_cart_id_carts"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_track_events_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_track_events")),
    )
    with op.batch_alter_table("track_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_track_events_cart_id"), ["cart_id"], unique=False)
        batch_op.create_index("ix_track_events_store_at", ["store_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("track_events", schema=None) as batch_op:
        batch_op.drop_index("ix_track_events_store_at")
        batch_op.drop_index(batch_op.f("ix_track_events_cart_id"))
    op.drop_table("track_events")
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.drop_column("contact_source")
        batch_op.drop_column("tracked_at")
