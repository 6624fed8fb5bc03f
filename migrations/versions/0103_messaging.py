"""messaging: provider delivery events on recovery_messages, push_subscriptions

Revision ID: 0103
Revises: 0102
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import recovery.storage.types

revision = "0103"
down_revision = "0102"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("recovery_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivery_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("delivery_error", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("delivery_updated_at", recovery.storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_recovery_messages_provider_message_id", ["provider_message_id"], unique=False
        )

    op.create_table(
        "push_subscriptions",
        sa.Column("id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("cart_id", ID, nullable=True),
        sa.Column("sid", sa.String(length=64), nullable=True),
        sa.Column("endpoint", sa.String(length=2048), nullable=False),
        sa.Column("keys", JSON, nullable=False),
        sa.Column("created_at", recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cart_id"], ["carts.id"], name=op.f("fk_push_subscriptions_cart_id_carts"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["store_id"],
            ["stores.id"],
            name=op.f("fk_push_subscriptions_store_id_stores"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_subscriptions")),
        sa.UniqueConstraint("endpoint", name=op.f("uq_push_subscriptions_endpoint")),
    )
    with op.batch_alter_table("push_subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_push_subscriptions_cart_id"), ["cart_id"], unique=False)
        batch_op.create_index("ix_push_subscriptions_store_sid", ["store_id", "sid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("push_subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_push_subscriptions_store_sid")
        batch_op.drop_index(batch_op.f("ix_push_subscriptions_cart_id"))
    op.drop_table("push_subscriptions")
    with op.batch_alter_table("recovery_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_recovery_messages_provider_message_id")
        batch_op.drop_column("delivery_updated_at")
        batch_op.drop_column("delivery_error")
        batch_op.drop_column("delivery_status")
