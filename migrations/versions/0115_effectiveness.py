"""measured effectiveness: send decisions with propensities, holdout by shopper

Revision ID: 0115
Revises: 0113
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import recovery.storage.types

revision = "0115"
down_revision = "0113"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = recovery.storage.types.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("stores", schema=None) as batch_op:
        # per-store salt of the holdout hash: a shopper's group is stable and unguessable across stores
        batch_op.add_column(sa.Column("experiment_salt", sa.String(length=32), nullable=True))
    # existing stores get theirs now; new ones when they are made (the model's default)
    bind = op.get_bind()
    for (store_id,) in bind.execute(sa.text("SELECT id FROM stores WHERE experiment_salt IS NULL")).all():
        bind.execute(sa.text("UPDATE stores SET experiment_salt = :salt WHERE id = :id"),
                     {"salt": secrets.token_hex(16), "id": store_id})
    with op.batch_alter_table("experiment_assignments", schema=None) as batch_op:
        # the unit assigned: a salted hash of the shopper key, never the email or phone itself
        batch_op.add_column(sa.Column("unit", sa.String(length=64), nullable=True))
    op.create_table(
        "send_decisions",
        sa.Column("id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("cart_id", ID, nullable=False),
        sa.Column("candidates", JSON, nullable=False),
        sa.Column("chosen", sa.Double(), nullable=False),
        sa.Column("propensity", sa.Double(), nullable=False),
        sa.Column("greedy", sa.Double(), nullable=False),
        sa.Column("epsilon", sa.Double(), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("features", JSON, nullable=False),
        sa.Column("decided_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_send_decisions_store_id_stores"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["cart_id"], ["carts.id"], name=op.f("fk_send_decisions_cart_id_carts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_send_decisions")),
        sa.UniqueConstraint("cart_id", name=op.f("uq_send_decisions_cart_id")),
    )
    with op.batch_alter_table("send_decisions", schema=None) as batch_op:
        batch_op.create_index("ix_send_decisions_store_decided", ["store_id", "decided_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("send_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_send_decisions_store_decided")
    op.drop_table("send_decisions")
    with op.batch_alter_table("experiment_assignments", schema=None) as batch_op:
        batch_op.drop_column("unit")
    with op.batch_alter_table("stores", schema=None) as batch_op:
        batch_op.drop_column("experiment_salt")
