"""send policy: consents, shopper_sends and carts.bot_reason

Revision ID: 0104
Revises: 0103
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import recovery.storage.types

revision = "0104"
down_revision = "0103"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bot_reason", sa.String(length=32), nullable=True))

    op.create_table(
        "consents",
        sa.Column("id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("basis", sa.String(length=24), nullable=False),
        sa.Column("source", sa.String(length=24), nullable=False),
        sa.Column("recorded_at", recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_consents_customer_id_customers"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_consents_store_id_stores"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
        sa.UniqueConstraint("store_id", "channel", "address", name=op.f("uq_consents_store_id_channel_address")),
    )
    op.create_table(
        "shopper_sends",
        sa.Column("id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("shopper_key", sa.String(length=64), nullable=False),
        sa.Column("last_sent_at", recovery.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_message_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_shopper_sends_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shopper_sends")),
        sa.UniqueConstraint("store_id", "shopper_key", name=op.f("uq_shopper_sends_store_id_shopper_key")),
    )


def downgrade() -> None:
    op.drop_table("shopper_sends")
    op.drop_table("consents")
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.drop_column("bot_reason")
