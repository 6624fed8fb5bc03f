"""discount arms: the probability each recorded assignment had under the assigning policy

Revision ID: 0125
Revises: 0120
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0125"
down_revision = "0120"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiment_assignments", schema=None) as batch_op:
        # P(this variant) when it was drawn: off-policy evaluation of the discount arms weighs by it.
        # NULL for rows before this migration and for assignments whose probability is not recorded.
        batch_op.add_column(sa.Column("propensity", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("experiment_assignments", schema=None) as batch_op:
        batch_op.drop_column("propensity")
