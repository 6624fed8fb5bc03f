"""carts.platform_delivery_id: which stored delivery the cart's platform state came from

Two states of one cart with the same platform timestamp (Shopify's and WooCommerce's have whole seconds) are
ordered by the delivery that brought them: the later-received one wins, whichever worker applies it first.

Revision ID: 0130
Revises: 0129
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0130"
down_revision = "0129"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Not batch mode: SQLite adds (and drops) a column in place; rebuilding `carts` would break the figures
    # triggers (0118) that name it.
    op.add_column("carts", sa.Column("platform_delivery_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("carts", "platform_delivery_id")
