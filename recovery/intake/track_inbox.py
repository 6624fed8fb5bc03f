"""The beacon inbox (PostgreSQL): /track stores a beacon that needs no answer in one prepared statement, and
the dispatcher's track relay applies the stored beacons in batches, with `apply_beacon`, soon after.

Why: applying a beacon at the edge cost about nine ORM round trips (the store's SHARE lock, the cart's
FOR UPDATE, savepoint, insert, order lookup, items, commit) while the shopper's browser only waits for a
2xx. The webhook path does the same (recovery/intake/deliveries.py `record_webhook`): the store lookup,
the origin check and the INSERT are one statement, prepared once per connection and group-committed per
gevent worker (recovery/storage/pggroup.py), so a 2xx still means the beacon is durable.

Which beacons: those whose answer is always 204 and that start nothing (`deferrable`): cart, view,
popup shown/closed, checkout steps. Exit intent (its answer is the popup) and contact capture (counted
against the contact limits, may start a sequence, may be refused for a bad phone) stay synchronous.

Applying: in id order, one transaction per batch, each store locked FOR SHARE first as the edge did
(recovery/storage/locks.py), `now` = the time the edge accepted it, so the result is the one the
synchronous path would have had. A row that cannot be applied is dead-lettered (`failed_at`, `error`)
without stopping the others; a database failure leaves every row of the batch for the next pass.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import (
    BigInteger, Integer, Numeric, String, TextClause, bindparam, cast, column, delete, exists, func, literal, or_, select, text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from recovery.intake.orders import link_earlier_order
from recovery.intake.origins import origins_of
from recovery.intake.tracking import CONTACT_TYPES, KnownCarts, apply_beacon, fresh_cart
from recovery.intake.tracking_schema import BeaconError
from recovery.model import strip_token
from recovery.sequence.timing import Timing
from recovery.storage import locks
from recovery.storage import tables as t
from recovery.storage.db import DriverStatement
from recovery.storage.types import UTCDateTime
from recovery.storage.tables import utcnow

log = logging.getLogger(__name__)

#: Beacons one relay pass applies at most, in one transaction.
BATCH = 200
#: What a row's failure may be: the beacon, not the database (those leave the row for the next pass).
POISON = (BeaconError, ValueError, LookupError, TypeError, ArithmeticError, DataError, IntegrityError)


def deferrable(beacon: dict[str, Any]) -> bool:
    """Whether the beacon's answer is 204 whatever it finds and it may capture no contact."""
    return (beacon["type"] not in CONTACT_TYPES and beacon["type"] != "exit"
            and beacon.get("popup") != "email_submitted")  # fmt: skip


#: The store (active, named by the beacon), whether the origin is one it allows by an exact match with its
#: domain or a stored origin (the common case; anything else is decided in Python from the returned settings),
#: and the INSERT when allowed (or `trusted`: Python decided) and `store` is set (not a dry run).
_RECORD = DriverStatement(text("""
WITH store AS (
    SELECT id, domain, settings,
           CAST(:origin AS text) = 'https://' || domain
           OR coalesce(settings -> 'allowed_origins' @> jsonb_build_array(CAST(:origin AS text)), false) AS allowed
    FROM stores WHERE domain = :shop AND uninstalled_at IS NULL
    LIMIT 1
), added AS (
    INSERT INTO track_inbox (store_id, received_at, cart_token, checkout_token, beacon)
    SELECT id, CAST(:now AS timestamptz), CAST(:cart_token AS varchar), CAST(:checkout_token AS varchar),
           CAST(:beacon AS jsonb)
    FROM store WHERE CAST(:store AS boolean) AND (allowed OR CAST(:trusted AS boolean))
    RETURNING id
)
SELECT id, (SELECT id FROM added), allowed, CASE WHEN NOT allowed THEN CAST(settings AS text) END, domain
FROM store
"""), group_commit=True)


def record(
    engine: Engine, beacon: dict[str, Any], origin: str | None, now: datetime, *, store: bool = True,
    trusted: bool = False,
) -> tuple[str, int | None]:
    """Check the beacon's store and origin and, with `store`, keep it in the inbox: one statement.

    ("unknown", None) for an unknown or uninstalled shop; ("forbidden", None) for an origin it does not
    allow; ("stored", id) once the row is committed; ("allowed", None) for a dry run (`store=False`).
    `trusted`: the caller checked the origin already (a dry run answered "allowed")."""
    info = beacon.get("cart")
    rows = _RECORD.autocommit(
        engine, shop=beacon["shop"], origin=origin or "", now=now, store=store, trusted=trusted,
        cart_token=strip_token(info["token"]) if info and info.get("token") else None,
        checkout_token=beacon.get("checkout_token") or None,
        beacon=msgspec.json.encode(beacon).decode() if store else None,  # UTF-8, compact: as json.dumps, faster
    )  # fmt: skip
    if not rows:
        return "unknown", None
    _store_id, added, allowed, settings, domain = rows[0]
    if added is not None:
        return "stored", added
    if not allowed and (origin is None or origin not in origins_of(json.loads(settings or "{}"), domain)):
        return "forbidden", None
    if not store or trusted:
        return "allowed", None
    return record(engine, beacon, origin, now, trusted=True)  # an origin only Python's normalization allows


_ANY_PENDING = DriverStatement(select(exists().where(t.TrackInbox.failed_at.is_(None))))


def any_pending(engine: Engine) -> bool:
    """One probe of the partial index: an idle relay polling often costs next to nothing."""
    return bool(_ANY_PENDING.autocommit(engine)[0][0])


def apply_pending(session: Session, timing: Timing = Timing(), limit: int = BATCH) -> tuple[int, int]:
    """Apply the oldest waiting beacons (rows another relay holds are skipped); caller commits.

    Returns (applied, dead-lettered). All in one transaction; if one row fails, the batch is applied
    again row by row, each in a savepoint, and the failing rows are dead-lettered with the reason."""
    rows = session.scalars(
        select(t.TrackInbox).where(t.TrackInbox.failed_at.is_(None)).order_by(t.TrackInbox.id).limit(limit)
        .with_for_update(skip_locked=True)
    ).all()  # fmt: skip
    if not rows:
        return 0, 0
    stores = {
        s.id: s
        for s in session.scalars(
            select(t.Store).where(t.Store.id.in_({r.store_id for r in rows})).order_by(t.Store.id)
            .with_for_update(**locks.STORE_SHARED)  # as the edge did: waits for a webhook being applied
        )
    }  # fmt: skip
    try:
        with session.begin_nested():
            known = _carts_of(session, [r for r in rows if _live(stores.get(r.store_id))], stores, timing)
            for row in rows:
                _apply(session, stores.get(row.store_id), row, timing, known)
    except POISON:
        return _one_by_one(session, rows, stores, timing)
    _delete(session, [row.id for row in rows])
    return len(rows), 0


def _live(store: t.Store | None) -> bool:
    return store is not None and store.uninstalled_at is None


def _apply(
    session: Session, store: t.Store | None, row: t.TrackInbox, timing: Timing, known: list[t.Cart] | None = None
) -> None:
    if not _live(store):
        return  # uninstalled meanwhile: the edge would have answered 404 now; nothing to apply
    apply_beacon(session, store, row.beacon, row.received_at, timing, known=known)  # type: ignore[arg-type]


def _token(beacon: dict[str, Any]) -> str | None:
    info = beacon.get("cart")
    return strip_token(info["token"]) if info and info.get("token") else None


def _carts_of(
    session: Session, rows: list[t.TrackInbox], stores: dict[int, t.Store], timing: Timing
) -> list[t.Cart]:
    """Every cart the batch's beacons name, locked FOR UPDATE (in id order) in one query, so `apply_beacon`
    finds them without a query each. First the carts the batch creates, in one INSERT: those whose first
    beacon here is a cart beacon (as `apply_beacon` would create them: same values; a cart that exists
    already is left alone), with `link_earlier_order` for the few whose order came first."""
    first: dict[tuple[int, str], t.TrackInbox] = {}
    checkouts: set[tuple[int, str]] = set()
    for row in rows:
        if token := _token(row.beacon):
            first.setdefault((row.store_id, token), row)
        if row.beacon.get("checkout_token"):
            checkouts.add((row.store_id, row.beacon["checkout_token"]))
    if not first and not checkouts:
        return []
    fresh = {key: row for key, row in first.items() if row.beacon["type"] == "cart" and not row.beacon.get("checkout_token")}
    ordered: set[tuple[int, str | None]] = set()
    if fresh:
        ordered = {(r[0], r[1]) for r in session.execute(
            select(t.Order.store_id, t.Order.cart_token)
            .where(t.Order.cancelled_at.is_(None), _pairs_in("orders.store_id, orders.cart_token", fresh, "o"))
        )}  # fmt: skip
    # A new cart is inserted with its first beacon applied, as `apply_beacon` would leave it, so applying that
    # beacon below changes nothing; one whose order came first is inserted bare, linked, then applied (closed).
    new = [
        fresh_cart(session, stores[key[0]], key[1], row.beacon, row.received_at, timing, applied=key not in ordered)
        for key, row in fresh.items()
    ]
    created: set[tuple[int, str]] = set()
    if new:
        created = {(r[0], r[1]) for r in session.connection().execute(_insert_carts(new))}
    ordered &= created
    named = [_pairs_in("carts.store_id, carts.cart_token", first, "c")] if first else []
    if checkouts:
        named.append(_pairs_in("carts.store_id, carts.checkout_token", checkouts, "k"))
    known = KnownCarts(session.scalars(select(t.Cart).where(or_(*named)).order_by(t.Cart.id).with_for_update()))
    for cart in known:
        if (cart.store_id, cart.cart_token) in ordered:
            link_earlier_order(session, cart.store_id, cart)
    return known


#: What differs between the new carts of a batch; the other columns are the same for all (`tracking._new`).
_VARYING = {"store_id": BigInteger(), "cart_token": String(), "currency": String(), "last_activity_at": UTCDateTime(),
            "created_at": UTCDateTime(), "line_items": JSONB(), "subtotal": Numeric(), "total": Numeric(),
            "tracked_at": UTCDateTime(), "abandon_at": UTCDateTime(), "shopper_timezone": String(),
            "device": String()}  # fmt: skip
_SAME = ("checkout_token", "status", "source", "platform_updated_at")


def _insert_carts(new: list[Any]) -> Any:
    """One INSERT ... SELECT FROM jsonb_to_recordset(one JSON text) for the batch's new carts, in order (a cart that
    exists already is left alone), returning (store_id, cart_token) of those made: the same short statement
    whatever the batch's size. (A multi-row VALUES of 200 rows x 12 columns was a new text psycopg parsed for
    every batch; one array per column cost more CPU in psycopg's array dumper than the rest of the relay.)"""
    batch = json.dumps([{**{col: getattr(cart, col) for col in _VARYING}, "n": n} for n, cart in enumerate(new)],
                       default=str)  # datetimes (ISO 8601 with their offset) and amounts as text
    rows = func.jsonb_to_recordset(cast(bindparam("new_carts", batch, type_=String()), JSONB)).table_valued(
        *(column(col, kind) for col, kind in _VARYING.items()), column("n", Integer())
    ).render_derived(name="r", with_types=True)  # fmt: skip
    same = {col: getattr(new[0], col) for col in _SAME}
    table = t.Cart.__table__
    values = [rows.c[col] for col in _VARYING] + [literal(value, table.c[col].type) for col, value in same.items()]
    made = pg_insert(table).from_select([*_VARYING, *same], select(*values).order_by(rows.c.n))
    return made.on_conflict_do_nothing().returning(t.Cart.store_id, t.Cart.cart_token)


def _pairs_in(columns: str, pairs: Any, name: str) -> TextClause:
    """`(store column, token column) IN pairs` as two array parameters: the same short statement whatever the
    number of pairs (an IN list of 200 pairs was a new 400-parameter text that psycopg parsed for every batch)."""
    stores, tokens = zip(*pairs, strict=True) if pairs else ((), ())
    sql = f"({columns}) IN (SELECT * FROM unnest(CAST(:{name}_s AS integer[]), CAST(:{name}_t AS text[])))"  # noqa: S608 - our column names
    return text(sql).bindparams(**{f"{name}_s": list(stores), f"{name}_t": list(tokens)})


def _one_by_one(
    session: Session, rows: Any, stores: dict[int, t.Store], timing: Timing
) -> tuple[int, int]:
    done, dead = [], 0
    for row in rows:
        try:
            with session.begin_nested():
                _apply(session, stores.get(row.store_id), row, timing)
        except POISON as exc:
            row.failed_at, row.error = utcnow(), f"{type(exc).__name__}: {exc}"[:500]
            dead += 1
            log.warning("track inbox row %s dead-lettered: %s", row.id, type(exc).__name__)
        else:
            done.append(row.id)
    _delete(session, done)
    return len(done), dead


def _delete(session: Session, ids: list[int]) -> None:
    if ids:
        session.execute(delete(t.TrackInbox).where(text("track_inbox.id = ANY(CAST(:ids AS bigint[]))").bindparams(
            ids=list(ids))).execution_options(synchronize_session=False))
