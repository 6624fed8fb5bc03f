"""orders and carts: indexes on the shopper keys the send check and the abandoner look up

The last-mile check (recovery/sending/checks.py `_shoppers_who_ordered`) asks, for every send batch, whether
the batch's shoppers ordered since their carts' last activity: by cart, customer, email or phone. Only the
cart had an index, so PostgreSQL read the whole orders table for every batch: `cartresq bench history`
measured the cost growing with history (5 M past carts). Partial indexes (the key present) on
(store_id, key) let each arm of the OR be an index probe (a BitmapOr). Likewise the abandoner's lookup of
a shopper's other carts by email or phone (recovery/sequence/abandonment.py `_supersede`): carts had an index
on email only, so any cart with a phone in the batch made it a sequential scan of all carts.

Revision ID: 0124
Revises: 0122
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0124"
down_revision = "0122"
branch_labels = None
depends_on = None

KEYS = ("email", "phone", "customer_id")


def upgrade() -> None:
    for key in KEYS:
        where = sa.text(f"{key} IS NOT NULL")
        op.create_index(f"ix_orders_store_{key}", "orders", ["store_id", key],
                        postgresql_where=where, sqlite_where=where)  # fmt: skip
    where = sa.text("phone IS NOT NULL")
    op.create_index("ix_carts_store_phone", "carts", ["store_id", "phone"], postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    op.drop_index("ix_carts_store_phone", table_name="carts")
    for key in KEYS:
        op.drop_index(f"ix_orders_store_{key}", table_name="orders")
