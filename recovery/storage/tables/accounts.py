"""Merchant accounts of the standalone door (migration 0116) and each store's own message copy (0117).

An account signs in with email + password (argon2 hash only), sees the stores linked to it in
`account_stores`, and holds server-side sessions (`account_sessions`: only a hash of the cookie's token is
kept). `account_tokens` are single-use links (password reset, claiming a newly activated store);
`sign_in_failures` feed the sign-in rate limit (per account and per address).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from recovery.storage.tables.base import Base, utcnow
from recovery.storage.types import Id


class MerchantAccount(Base):
    __tablename__ = "merchant_accounts"
    __table_args__ = (UniqueConstraint("email"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    #: Lower-cased; the address reset links and test messages go to.
    email: Mapped[str] = mapped_column(String(320))
    #: argon2id (argon2-cffi's PasswordHasher); None until the merchant sets one through a link.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None]


class AccountStore(Base):
    __tablename__ = "account_stores"

    account_id: Mapped[int] = mapped_column(ForeignKey("merchant_accounts.id", ondelete="CASCADE"), primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccountSession(Base):
    __tablename__ = "account_sessions"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(ForeignKey("merchant_accounts.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class AccountToken(Base):
    """A single-use emailed or handed-over link: `reset` (an account's password) or `claim` (a store)."""

    __tablename__ = "account_tokens"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("merchant_accounts.id", ondelete="CASCADE"), index=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class SignInFailure(Base):
    """One refused sign-in: `account_key` is a hash of the typed email (never the address), `ip` the client."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (Index("ix_sign_in_failures_account_key_at", "account_key", "at"),
                      Index("ix_sign_in_failures_ip_at", "ip", "at"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_key: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class StoreCopy(Base):
    """A store's own text for one part (subject, preheader, intro) of one template in one language."""

    __tablename__ = "store_copy"
    __table_args__ = (UniqueConstraint("store_id", "template", "language", "part"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    template: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8))
    part: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
