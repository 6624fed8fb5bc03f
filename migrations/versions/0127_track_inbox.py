"""track_inbox: storefront beacons accepted at the edge, applied in batches by the dispatcher's track relay

Revision ID: 0127
Revises: 0126
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import recovery.storage.types

revision = "0127"
down_revision = "0126"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AT = recovery.storage.types.UTCDateTime(timezone=True)
PENDING = sa.text("failed_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "track_inbox",
        sa.Column("id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("received_at", AT, nullable=False),
        sa.Column("cart_token", sa.String(length=255), nullable=True),
        sa.Column("checkout_token", sa.String(length=255), nullable=True),
        sa.Column("beacon", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False),
        sa.Column("failed_at", AT, nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_track_inbox_store_id_stores"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_track_inbox")),
    )
    with op.batch_alter_table("track_inbox", schema=None) as batch_op:
        batch_op.create_index("ix_track_inbox_pending", ["id"], unique=False,
                              postgresql_where=PENDING, sqlite_where=PENDING)
        batch_op.create_index("ix_track_inbox_cart", ["store_id", "cart_token"], unique=False,
                              postgresql_where=PENDING, sqlite_where=PENDING)
        batch_op.create_index("ix_track_inbox_checkout", ["store_id", "checkout_token"], unique=False,
                              postgresql_where=PENDING, sqlite_where=PENDING)


def downgrade() -> None:
    op.drop_table("track_inbox")
