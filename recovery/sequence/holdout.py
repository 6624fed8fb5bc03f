"""Holdout by shopper, not by cart: a salted hash of the shopper key decides the group.

Caps, cancellations and superseding act per shopper, so a shopper whose carts fell into both
groups would leak treatment into the holdout. The key is the shopper's email (else phone, else
platform customer id, else the cart itself); the per-store salt makes groups independent across
stores and unguessable from the key. What is recorded is the hash (`unit`), never the key.
"""

from __future__ import annotations

import hashlib
import hmac
import random

from sqlalchemy.orm import Session

from recovery.storage import tables as t

HOLDOUT, TREATMENT = "holdout", "treatment"


def shopper_key(cart: t.Cart) -> str:
    if cart.email:
        return "e:" + cart.email.strip().lower()
    if cart.phone:
        return "p:" + "".join(ch for ch in cart.phone if ch.isdigit() or ch == "+")
    if cart.customer_id:
        return f"c:{cart.customer_id}"
    return f"cart:{cart.id}"


def unit(salt: str, key: str) -> str:
    return hmac.new(salt.encode(), key.encode(), hashlib.sha256).hexdigest()[:32]


def variant(unit_hash: str, holdout_percent: float) -> str:
    """The first 32 bits of the hash, as a share of 100, below the holdout percent: holdout."""
    return HOLDOUT if int(unit_hash[:8], 16) / 2**32 * 100 < holdout_percent else TREATMENT


def store_salt(session: Session, store: t.Store, rng: random.Random) -> str:
    """The store's salt, drawn when its row was made (t.Store's default, migration 0115 for older rows).
    Read only: the abandoner holds cart locks here and must not wait for a store row (recovery/storage/locks.py).
    A row inserted without it (raw SQL) gets a salt derived from its identity, not written back."""
    if store.experiment_salt:
        return store.experiment_salt
    return hashlib.sha256(f"cartresq-holdout:{store.platform}:{store.domain}:{store.id}".encode()).hexdigest()[:32]
