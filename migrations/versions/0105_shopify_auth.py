"""shopify install, expiring tokens, oauth states, discount codes

Revision ID: 0105
Revises: 0104
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import recovery.storage.types

revision = "0105"
down_revision = "0104"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("stores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("access_token_expires_at", recovery.storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("refresh_token_expires_at", recovery.storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("needs_reauth_at", recovery.storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("reauth_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("reconciled_at", recovery.storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("platform_issue", sa.Text(), nullable=True))

    op.create_table(
        "oauth_states",
        sa.Column("id", ID, nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("shop", sa.String(length=255), nullable=False),
        sa.Column("created_at", recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_states")),
        sa.UniqueConstraint("state", name=op.f("uq_oauth_states_state")),
    )

    op.create_table(
        "discount_codes",
        sa.Column("id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("cart_id", ID, nullable=False),
        sa.Column("message_id", ID, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("platform_id", sa.String(length=128), nullable=True),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("ends_at", recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", recovery.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["cart_id"], ["carts.id"], name=op.f("fk_discount_codes_cart_id_carts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["message_id"], ["recovery_messages.id"], name=op.f("fk_discount_codes_message_id_recovery_messages"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_discount_codes_store_id_stores"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discount_codes")),
        sa.UniqueConstraint("message_id", name=op.f("uq_discount_codes_message_id")),
        sa.UniqueConstraint("store_id", "code", name=op.f("uq_discount_codes_store_id_code")),
    )
    with op.batch_alter_table("discount_codes", schema=None) as batch_op:
        batch_op.create_index("ix_discount_codes_cleanup", ["deleted_at", "ends_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_discount_codes_cart_id"), ["cart_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("discount_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_discount_codes_cart_id"))
        batch_op.drop_index("ix_discount_codes_cleanup")
    op.drop_table("discount_codes")
    op.drop_table("oauth_states")
    with op.batch_alter_table("stores", schema=None) as batch_op:
        for name in (
            "platform_issue",
            "reconciled_at",
            "reauth_reason",
            "needs_reauth_at",
            "refresh_token_expires_at",
            "access_token_expires_at",
        ):
            batch_op.drop_column(name)
