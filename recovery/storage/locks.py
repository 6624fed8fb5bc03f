"""The one lock order of CartResQ's PostgreSQL transactions, and the store-row lock modes.

Every transaction that takes row locks on several of these tables takes them in this order:

    webhook_deliveries (the one being processed) → stores → carts → recovery_messages
        → experiment_assignments, shopper_sends (inserted or locked last, sorted by key)

and never waits for a lock on an earlier table while holding one on a later table. The store row is
what serializes one store's events; its lock modes are chosen so that the web tier never waits for
anything but a store's own short event transaction:

- intake (recovery.intake.deliveries.process_delivery) and the operator's store changes: FOR NO KEY UPDATE. That
  serializes a store's events and does NOT conflict with the KEY SHARE lock every INSERT referencing the
  store takes through its foreign key: a webhook receipt's INSERT (the web tier), the abandoner's
  experiment assignments and messages. (FOR UPDATE did conflict: the abandoner, holding a cart, waited
  for the store while intake, holding the store, waited for the cart: PostgreSQL's "deadlock detected",
  and the receipt INSERT waited behind both.)
- beacons (recovery.intake.tracking.apply_beacon) and the pre-send check (recovery.sending.send): FOR SHARE, taken
  before any cart or message: they wait for an event being applied to the store, so an order applied
  just before is seen, and they never hold a cart or a message while they wait.
- the abandoner takes no store lock; it locks carts (SKIP LOCKED), then messages, then inserts
  assignments, whose key share on the store never waits (nobody holds FOR UPDATE on a store in the loop).

`FOR UPDATE` on a store row is left to what changes its key or deletes it (shop redaction).
"""

from __future__ import annotations

#: SQLAlchemy's with_for_update() arguments for each mode named above.
STORE_EXCLUSIVE = {"key_share": True}  # FOR NO KEY UPDATE
STORE_SHARED = {"read": True}  # FOR SHARE
