"""Connecting a WooCommerce store: `/wc-auth/v1/authorize`, the key callback, and the store's records.

The `user_id` we send is a random single-use token; only its SHA-256 is stored, so a database
reader cannot complete someone else's grant. WooCommerce echoes it in the key POST, which carries
no store URL: the token is what maps the keys back to the store the activation started with.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connectors.woocommerce.api import store_domain
from recovery.storage import tables as t
from recovery.storage.crypto import Vault
from recovery.config.stores import add_store

APP_NAME = "CartResQ"
#: The merchant logs in and approves within this time, or starts again.
ACTIVATION_TTL = timedelta(hours=1)
#: (connect, read) seconds for the call that confirms new keys: WooCommerce waits on our answer, and the
#: store URL was given by whoever started the activation.
CALLBACK_TIMEOUT = (3.0, 8.0)


class ActivationError(ValueError):
    """Why a callback is refused; WooCommerce then deletes the keys it just made."""


@dataclass(frozen=True)
class KeyGrant:
    user_id: str
    key_id: int | None
    consumer_key: str
    consumer_secret: str
    permissions: str


def _hash(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()


def start(session: Session, store_url: str, app_url: str, now: datetime) -> str:
    """Record a new activation; return the authorize URL the merchant's browser goes to."""
    user_id = secrets.token_urlsafe(32)
    session.add(
        t.WooActivation(
            token_hash=_hash(user_id), store_url=store_url, created_at=now, expires_at=now + ACTIVATION_TTL
        )
    )
    query = urlencode(
        {
            "app_name": APP_NAME,
            "scope": "read_write",
            "user_id": user_id,
            "return_url": f"{app_url}/auth/woocommerce/return",
            "callback_url": f"{app_url}/auth/woocommerce/callback",
        }
    )
    return f"{store_url}/wc-auth/v1/authorize?{query}"


def parse_grant(payload: Any) -> KeyGrant:
    """The JSON WooCommerce POSTs to the callback (class-wc-auth.php), checked field by field."""
    if not isinstance(payload, dict):
        raise ActivationError("body is not a JSON object")
    fields = {}
    for name in ("user_id", "consumer_key", "consumer_secret", "key_permissions"):
        value = payload.get(name)
        if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
            raise ActivationError(f"{name} is missing")
        fields[name] = str(value).strip()
    if not fields["consumer_key"].startswith("ck_") or not fields["consumer_secret"].startswith("cs_"):
        raise ActivationError("consumer_key/consumer_secret are not WooCommerce REST keys")
    if fields["key_permissions"] != "read_write":
        raise ActivationError("the keys must have read_write permissions")
    key_id = payload.get("key_id")
    return KeyGrant(
        fields["user_id"],
        key_id if isinstance(key_id, int) else None,
        fields["consumer_key"],
        fields["consumer_secret"],
        fields["key_permissions"],
    )


def claim(session: Session, user_id: str, now: datetime) -> str:
    """Use up the activation atomically (two racing callbacks cannot both win); return its store URL."""
    token_hash = _hash(user_id)
    row = session.execute(
        select(t.WooActivation.used_at, t.WooActivation.expires_at, t.WooActivation.store_url).where(
            t.WooActivation.token_hash == token_hash
        )
    ).first()
    if row is None:
        raise ActivationError("unknown user_id")
    if row.used_at is not None:
        raise ActivationError("user_id was already used")
    if row.expires_at < now:
        raise ActivationError("the activation expired; start it again")
    result = session.execute(
        update(t.WooActivation)
        .where(t.WooActivation.token_hash == token_hash, t.WooActivation.used_at.is_(None))
        .values(used_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ActivationError("user_id was already used")
    return str(row.store_url)


def connect(
    session: Session, vault: Vault, store_url: str, grant: KeyGrant, user_id: str, now: datetime
) -> t.WooConnection:
    """Create (or re-activate) the store with its keys sealed, and its connection row."""
    store = add_store(session, platform="woocommerce", domain=store_domain(store_url))
    store.credentials = vault.seal(
        {"consumer_key": grant.consumer_key, "consumer_secret": grant.consumer_secret, "key_id": grant.key_id}
    )
    connection = session.scalar(select(t.WooConnection).where(t.WooConnection.store_id == store.id))
    if connection is None:
        connection = t.WooConnection(
            store_id=store.id,
            store_key=secrets.token_urlsafe(24),
            store_url=store_url,
            plugin_secret=vault.seal({"restore_secret": secrets.token_hex(32)}),
            orders_synced_to=now,  # history before activation is not ours to recover
            created_at=now,
        )
        session.add(connection)
    connection.store_url = store_url
    connection.next_reconcile_at = now  # the first pass creates anything the callback could not
    session.execute(
        update(t.WooActivation).where(t.WooActivation.token_hash == _hash(user_id)).values(store_id=store.id)
    )
    session.flush()
    return connection
