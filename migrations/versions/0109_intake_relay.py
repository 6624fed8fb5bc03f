"""intake relay: index of the deliveries not yet handed to a worker; webhook payloads compressed with lz4

Revision ID: 0109
Revises: 0108
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0109"
down_revision = "0108"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
UNRELAYED = sa.text("processed_at IS NULL AND requeued_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_webhook_deliveries_unrelayed", "webhook_deliveries", ["id"],
        postgresql_where=UNRELAYED, sqlite_where=UNRELAYED,
    )  # fmt: skip
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # pglz was a fifth of PostgreSQL's CPU per webhook (bodies are a few kB, kept only until processed).
        # A server built without lz4 keeps pglz: a savepoint keeps the failed ALTER from aborting the rest.
        try:
            with bind.begin_nested():
                op.execute("ALTER TABLE webhook_deliveries ALTER COLUMN payload SET COMPRESSION lz4")
        except sa.exc.DBAPIError:
            log.warning("this PostgreSQL has no lz4: webhook payloads stay compressed with pglz")


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_unrelayed", table_name="webhook_deliveries")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE webhook_deliveries ALTER COLUMN payload SET COMPRESSION default")
