"""webhook deliveries deduplicated on the platform's event id too (X-Shopify-Event-Id, per topic)

Revision ID: 0112
Revises: 0111
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0112"
down_revision = "0111"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The same event under another delivery id (a replayed body, a second subscription) is a duplicate:
    # the webhook's one INSERT ... ON CONFLICT DO NOTHING meets this constraint too, no extra round trip.
    # NULLs are distinct, so deliveries without an event id (WooCommerce) are unaffected.
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("event_id", sa.String(128), nullable=True))
        batch.create_unique_constraint(
            "uq_webhook_deliveries_platform_shop_topic_event_id", ["platform", "shop", "topic", "event_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_constraint("uq_webhook_deliveries_platform_shop_topic_event_id", type_="unique")
        batch.drop_column("event_id")
