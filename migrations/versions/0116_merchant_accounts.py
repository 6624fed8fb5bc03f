"""merchant accounts: sign-in, sessions, single-use links, sign-in failures, account <-> stores

Revision ID: 0116
Revises: 0115
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import recovery.storage.types

revision = "0116"
down_revision = "0115"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = recovery.storage.types.UTCDateTime(timezone=True)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"),
                                   ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "merchant_accounts",
        sa.Column("id", ID, nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("last_sign_in_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_accounts")),
        sa.UniqueConstraint("email", name=op.f("uq_merchant_accounts_email")),
    )
    op.create_table(
        "account_stores",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        _fk("account_stores", "account_id", "merchant_accounts"),
        _fk("account_stores", "store_id", "stores"),
        sa.PrimaryKeyConstraint("account_id", "store_id", name=op.f("pk_account_stores")),
    )
    op.create_index(op.f("ix_account_stores_store_id"), "account_stores", ["store_id"])
    op.create_table(
        "account_sessions",
        sa.Column("id", ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        _fk("account_sessions", "account_id", "merchant_accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_sessions_token_hash")),
    )
    op.create_index(op.f("ix_account_sessions_account_id"), "account_sessions", ["account_id"])
    op.create_table(
        "account_tokens",
        sa.Column("id", ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("account_id", ID, nullable=True),
        sa.Column("store_id", ID, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("used_at", TIME, nullable=True),
        _fk("account_tokens", "account_id", "merchant_accounts"),
        _fk("account_tokens", "store_id", "stores"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_tokens_token_hash")),
    )
    op.create_index(op.f("ix_account_tokens_account_id"), "account_tokens", ["account_id"])
    op.create_index(op.f("ix_account_tokens_store_id"), "account_tokens", ["store_id"])
    op.create_table(
        "sign_in_failures",
        sa.Column("id", ID, nullable=False),
        sa.Column("account_key", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_failures")),
    )
    op.create_index("ix_sign_in_failures_account_key_at", "sign_in_failures", ["account_key", "at"])
    op.create_index("ix_sign_in_failures_ip_at", "sign_in_failures", ["ip", "at"])


def downgrade() -> None:
    op.drop_table("sign_in_failures")
    op.drop_table("account_tokens")
    op.drop_table("account_sessions")
    op.drop_table("account_stores")
    op.drop_table("merchant_accounts")
