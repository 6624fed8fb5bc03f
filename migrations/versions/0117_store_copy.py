"""store copy: a store's own subject, preheader and intro per template and language

Revision ID: 0117
Revises: 0116
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import recovery.storage.types

revision = "0117"
down_revision = "0116"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = recovery.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "store_copy",
        sa.Column("id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("template", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("part", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_store_copy_store_id_stores"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_copy")),
        sa.UniqueConstraint("store_id", "template", "language", "part",
                            name=op.f("uq_store_copy_store_id_template_language_part")),
    )


def downgrade() -> None:
    op.drop_table("store_copy")
