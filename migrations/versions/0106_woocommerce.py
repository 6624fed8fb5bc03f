"""woocommerce connections, webhooks and activations

Revision ID: 0106
Revises: 0105
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import recovery.storage.types

revision = "0106"
down_revision = "0105"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = recovery.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "woo_connections",
        sa.Column("id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("store_key", sa.String(length=64), nullable=False),
        sa.Column("store_url", sa.String(length=500), nullable=False),
        sa.Column("plugin_secret", sa.LargeBinary(), nullable=True),
        sa.Column("plugin_configured_at", TIME, nullable=True),
        sa.Column("orders_synced_to", TIME, nullable=True),
        sa.Column("next_reconcile_at", TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_woo_connections_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_woo_connections")),
        sa.UniqueConstraint("store_id", name=op.f("uq_woo_connections_store_id")),
        sa.UniqueConstraint("store_key", name=op.f("uq_woo_connections_store_key")),
    )
    op.create_index(
        op.f("ix_woo_connections_next_reconcile_at"), "woo_connections", ["next_reconcile_at"], unique=False
    )
    op.create_table(
        "woo_webhooks",
        sa.Column("id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("checked_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_woo_webhooks_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_woo_webhooks")),
        sa.UniqueConstraint("store_id", "topic", name=op.f("uq_woo_webhooks_store_id_topic")),
    )
    op.create_table(
        "woo_activations",
        sa.Column("id", ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("store_url", sa.String(length=500), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("used_at", TIME, nullable=True),
        sa.Column("store_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_woo_activations_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_woo_activations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_woo_activations_token_hash")),
    )


def downgrade() -> None:
    op.drop_table("woo_activations")
    op.drop_table("woo_webhooks")
    op.drop_index(op.f("ix_woo_connections_next_reconcile_at"), table_name="woo_connections")
    op.drop_table("woo_connections")
