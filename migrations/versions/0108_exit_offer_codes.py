"""exit-popup discount codes: discount_codes.exit_sid, message_id and cart_id optional

Revision ID: 0108
Revises: 0107
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0108"
down_revision = "0107"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("discount_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("exit_sid", sa.String(length=64), nullable=True))
        batch_op.alter_column("cart_id", existing_type=ID, nullable=True)
        batch_op.alter_column("message_id", existing_type=ID, nullable=True)
        batch_op.create_unique_constraint(
            batch_op.f("uq_discount_codes_store_id_exit_sid"), ["store_id", "exit_sid"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM discount_codes WHERE message_id IS NULL OR cart_id IS NULL")
    with op.batch_alter_table("discount_codes", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_discount_codes_store_id_exit_sid"), type_="unique")
        batch_op.alter_column("message_id", existing_type=ID, nullable=False)
        batch_op.alter_column("cart_id", existing_type=ID, nullable=False)
        batch_op.drop_column("exit_sid")
