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

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from recovery import tables as t

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
    """The store's salt, drawn once. Two dispatchers racing: the UPDATE ... WHERE NULL lets one win,
    and both read the winner's salt back."""
    if store.experiment_salt:
        return store.experiment_salt
    session.execute(
        update(t.Store)
        .where(t.Store.id == store.id, t.Store.experiment_salt.is_(None))
        .values(experiment_salt=f"{rng.getrandbits(128):032x}")
        .execution_options(synchronize_session=False)
    )
    salt = session.scalar(select(t.Store.experiment_salt).where(t.Store.id == store.id).execution_options(populate_existing=True))
    assert salt
    set_committed_value(store, "experiment_salt", salt)
    return salt
