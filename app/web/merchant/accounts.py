"""Standalone merchant accounts: passwords (argon2id), server sessions, single-use links, sign-in limits.

Sessions are rows (`account_sessions`); the cookie carries a random token and the table only its SHA-256,
so a database read leaks no usable session. The sign-in rate limit is DB-backed (`sign_in_failures`): it
holds across processes and machines without Redis, which the embedded default does not have.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from recovery.storage import tables as t

SESSION_TTL = timedelta(days=14)
RESET_TTL = timedelta(hours=1)
CLAIM_TTL = timedelta(days=2)
#: Failed sign-ins allowed in WINDOW: per typed email (whatever the address) and per client address.
WINDOW = timedelta(minutes=15)
PER_ACCOUNT, PER_IP = 5, 30
PASSWORD_MIN, PASSWORD_MAX = 10, 256

_hasher = PasswordHasher()
#: Verified against when the email is unknown, so both answers take the same time.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """What the merchant typed cannot be used; the message says why (no account existence leak)."""


@dataclass(frozen=True)
class Refused:
    retry_after: int  # seconds


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normal_email(email: str) -> str:
    value = email.strip().lower()
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain or len(value) > 320 or any(c.isspace() for c in value):
        raise AccountError("enter an email address such as you@shop.example.com")
    return value


def check_password(password: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise AccountError(f"use at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise AccountError(f"use at most {PASSWORD_MAX} characters")
    return password


def find(session: Session, email: str) -> t.MerchantAccount | None:
    return session.scalar(select(t.MerchantAccount).where(t.MerchantAccount.email == email.strip().lower()))


def create(session: Session, email: str, password: str | None = None) -> t.MerchantAccount:
    account = t.MerchantAccount(email=normal_email(email),
                                password_hash=_hasher.hash(check_password(password)) if password else None)
    session.add(account)
    session.flush()
    return account


def set_password(account: t.MerchantAccount, password: str) -> None:
    account.password_hash = _hasher.hash(check_password(password))


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def limited(session: Session, email: str, ip: str, now: datetime) -> Refused | None:
    """Refused while this email or this address had too many failures in the last WINDOW."""
    since = now - WINDOW
    f = t.SignInFailure
    for column, key, most in ((f.account_key, digest(email.strip().lower()), PER_ACCOUNT), (f.ip, ip, PER_IP)):
        count, oldest = session.execute(
            select(func.count(), func.min(f.at)).where(column == key, f.at > since)).one()
        if count >= most:
            return Refused(max(1, int((oldest + WINDOW - now).total_seconds()) + 1))
    return None


def sign_in(session: Session, email: str, password: str, ip: str, now: datetime) -> t.MerchantAccount | Refused | None:
    """The account (right password), a Refused (rate limited: the password is not even checked), or None."""
    if refused := limited(session, email, ip, now):
        return refused
    account = find(session, email)
    if account is not None and _verify(account.password_hash, password):
        account.last_sign_in_at = now
        if _hasher.check_needs_rehash(account.password_hash or ""):
            account.password_hash = _hasher.hash(password)
        return account
    if account is None:
        _verify(None, password)  # same work as a wrong password: no timing signal for unknown emails
    session.execute(delete(t.SignInFailure).where(t.SignInFailure.at < now - WINDOW))  # keep the table small
    session.add(t.SignInFailure(account_key=digest(email.strip().lower()), ip=ip[:64], at=now))
    return None


def open_session(session: Session, account_id: int, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    session.add(t.AccountSession(token_hash=digest(token), account_id=account_id, created_at=now,
                                 expires_at=now + SESSION_TTL))
    return token


def session_account(session: Session, token: str | None, now: datetime) -> t.MerchantAccount | None:
    if not token or len(token) > 100:
        return None
    row = session.scalar(select(t.AccountSession).where(t.AccountSession.token_hash == digest(token)))
    if row is None or row.expires_at <= now:
        return None
    return session.get(t.MerchantAccount, row.account_id)


def close_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(t.AccountSession).where(t.AccountSession.token_hash == digest(token)))


def close_all_sessions(session: Session, account_id: int) -> None:
    session.execute(delete(t.AccountSession).where(t.AccountSession.account_id == account_id))


def new_link(session: Session, purpose: str, now: datetime, *, account_id: int | None = None,
             store_id: int | None = None) -> str:
    token = secrets.token_urlsafe(32)
    ttl = RESET_TTL if purpose == "reset" else CLAIM_TTL
    session.add(t.AccountToken(token_hash=digest(token), purpose=purpose, account_id=account_id, store_id=store_id,
                               created_at=now, expires_at=now + ttl))
    return token


def peek_link(session: Session, token: str, purpose: str, now: datetime) -> t.AccountToken | None:
    """The link's row while it is unused and unexpired (not consumed: see `use_link`)."""
    if not token or len(token) > 100:
        return None
    row = session.scalar(select(t.AccountToken).where(t.AccountToken.token_hash == digest(token),
                                                      t.AccountToken.purpose == purpose).with_for_update())
    return row if row is not None and row.used_at is None and row.expires_at > now else None


def use_link(row: t.AccountToken, now: datetime) -> None:
    row.used_at = now


def link_store(session: Session, account_id: int, store_id: int) -> None:
    if session.get(t.AccountStore, (account_id, store_id)) is None:
        session.add(t.AccountStore(account_id=account_id, store_id=store_id))


def store_ids(account_id: int):  # type: ignore[no-untyped-def]
    """The ids of an account's stores, as a subquery for `Model.store_id.in_(...)`."""
    return select(t.AccountStore.store_id).where(t.AccountStore.account_id == account_id)
