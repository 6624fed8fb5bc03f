"""Keyed hashes of shoppers' addresses, for what must outlive a redaction: an opt-out.

After `customers/redact` no table holds the address in clear, yet a later cart from the same address must
still not be messaged. The suppression is kept as HMAC-SHA256(key, store id + address): it matches the
same address again (the send-time check hashes each candidate's address), names no one without the key,
and does not link one shopper across stores. The key is derived from SECRET_KEY and reaches the core
through the session (`session.info["pseudonym_key"]`, set by the composition root).
"""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy.orm import Session

PREFIX = "hmac:"


def derive_key(secret_key: str) -> bytes:
    """A key for this purpose only: a leaked pseudonym key does not sign links, and the reverse."""
    return hmac.new(secret_key.encode(), b"cartresq.pseudonym.v1", hashlib.sha256).digest()


def session_key(session: Session) -> bytes | None:
    return session.info.get("pseudonym_key")  # type: ignore[no-any-return]


def pseudonym(key: bytes, store_id: int, address: str) -> str:
    """The stored form of a normalized address (lower-cased email, E.164 phone) after redaction."""
    digest = hmac.new(key, f"{store_id}\x00{address}".encode(), hashlib.sha256).hexdigest()
    return PREFIX + digest
