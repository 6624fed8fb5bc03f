"""What `customers/redact` erases beyond the customer, carts and orders (recovery.consent.privacy), and the one
thing it keeps: the shopper's opt-outs, as keyed hashes (recovery/consent/pseudonym.py). docs/security.md lists
every table and what stays."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from recovery.consent import pseudonym
from recovery.storage import tables as t
from recovery.storage.db import insert_for
from recovery.sending.policy.caps import shopper_keys
from recovery.storage.tables import utcnow

#: Suppression.reason of an opt-out that was a withdrawn consent record before the redaction.
WITHDRAWN = "withdrawn consent"


def erase_traces(session: Session, store_id: int, addresses: Collection[str], carts: Sequence[t.Cart],
                 customer_ids: Collection[int]) -> None:
    """Call before the carts' contact fields are cleared (their ledger keys are computed from them).
    `addresses`: every normalized email/phone the shopper is known by in this store."""
    key = pseudonym.session_key(session)
    if key is None:
        raise RuntimeError("no pseudonym key on this session: an opt-out would be lost by the redaction")
    cart_ids = [c.id for c in carts]
    _keep_opt_outs_hashed(session, store_id, addresses, key)
    session.execute(delete(t.Consent).where(t.Consent.store_id == store_id, t.Consent.address.in_(addresses)))
    if customer_ids:
        session.execute(delete(t.Consent).where(t.Consent.customer_id.in_(customer_ids)))
    # The send ledger's keys hash addresses without a key (a dictionary would reverse them): dropped.
    ledger = {k for cart in carts for k in shopper_keys(cart)} | {f"customer:{c}" for c in customer_ids}
    session.execute(delete(t.ShopperSend).where(t.ShopperSend.store_id == store_id, t.ShopperSend.shopper_key.in_(ledger)))
    if cart_ids:
        session.execute(delete(t.TrackEvent).where(t.TrackEvent.cart_id.in_(cart_ids)))
        session.execute(delete(t.PushSubscription).where(t.PushSubscription.cart_id.in_(cart_ids)))
        # Provider errors and reasons can quote the address ("bounced: x@y"); the statuses stay.
        session.execute(
            update(t.RecoveryMessage).where(t.RecoveryMessage.cart_id.in_(cart_ids))
            .values(delivery_error=None).execution_options(synchronize_session=False)
        )
        for message in session.scalars(select(t.RecoveryMessage).where(
            t.RecoveryMessage.cart_id.in_(cart_ids), t.RecoveryMessage.reason.is_not(None)
        )):
            if any(a in (message.reason or "").lower() for a in addresses) or "@" in (message.reason or ""):
                message.reason = "customer data redacted"
    # Earlier data_request exports are copies of what is being erased.
    needles = [json.dumps(a)[1:-1] for a in addresses]
    for export in session.scalars(select(t.DataExport).where(t.DataExport.store_id == store_id)):
        text = json.dumps(export.document).lower()
        if any(n in text for n in needles) or any(f'"customer_id": {c}' in text for c in customer_ids):
            session.delete(export)


def _keep_opt_outs_hashed(session: Session, store_id: int, addresses: Collection[str], key: bytes) -> None:
    """Suppressions and withdrawn consent records of these addresses become suppressions of their hash."""
    kept = {(s.channel, s.address, s.reason) for s in session.scalars(select(t.Suppression).where(
        t.Suppression.store_id == store_id, t.Suppression.address.in_(addresses)))}
    kept |= {(c.channel, c.address, WITHDRAWN) for c in session.scalars(select(t.Consent).where(
        t.Consent.store_id == store_id, t.Consent.address.in_(addresses), t.Consent.granted.is_(False)))}
    session.execute(delete(t.Suppression).where(t.Suppression.store_id == store_id, t.Suppression.address.in_(addresses)))
    insert = insert_for(session.get_bind().dialect.name)
    for channel, address, reason in sorted(kept):
        session.execute(insert(t.Suppression).values(
            store_id=store_id, channel=channel, address=pseudonym.pseudonym(key, store_id, address),
            reason=reason[:32], created_at=utcnow(),
        ).on_conflict_do_nothing())
