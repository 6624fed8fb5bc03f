"""WooCommerce's side of offers (recovery.sequence.offers.OfferProvider): `POST /wc/v3/coupons`, and for an
expired code nobody used, `DELETE /wc/v3/coupons/<id>?force=true` on the reconcile schedule.

A code is one use in total and per shopper, percent off, restricted to the shopper's email when we
know it (WooCommerce checks that against the billing email at checkout, so guests can use it), and
expires at the offer window's end. The restore link hands it to our plugin, which applies it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session, sessionmaker

from connectors.woocommerce.api import WooClient, WooError
from recovery.storage import tables as t
from recovery.storage.crypto import Vault
from recovery.sequence.offers import IssuedCode, OfferUnavailable
from recovery.storage.tables import utcnow

log = logging.getLogger(__name__)

#: The send path holds row locks while the code is made: fail fast, the step then goes out as a reminder.
SEND_TIMEOUT = (5.0, 10.0)
TAKEN = "woocommerce_rest_coupon_code_already_exists"


def new_code() -> str:
    # 50 random bits in an unambiguous alphabet. WooCommerce lower-cases codes, and so do we.
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "crq-" + "".join(secrets.choice(alphabet) for _ in range(10))


def coupon_body(code: str, percent: int, ends_at: datetime, email: str | None) -> dict[str, object]:
    """`POST /coupons`: `date_expires` carries its UTC offset, so the site's timezone cannot shift it."""
    return {
        "code": code,
        "discount_type": "percent",
        "amount": str(int(percent)),
        "individual_use": True,
        "usage_limit": 1,
        "usage_limit_per_user": 1,
        "date_expires": ends_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "email_restrictions": [email] if email else [],
        "description": "CartResQ recovery offer (single use; deleted after it expires unused)",
    }


class WooOffers:
    """The OfferProvider for WooCommerce stores, with the REST keys the merchant granted."""

    def __init__(
        self,
        vault: Vault | Sequence[str],
        sessions: sessionmaker[Session] | None = None,
        *,
        allow_http: bool = False,
        timeout: tuple[float, float] = SEND_TIMEOUT,
        allow_private: bool = False,
    ) -> None:
        # `vault` may be the encryption keys, opened on first use: building the runtime must not fail on
        # a bad key. `sessions` reads the store's address when the caller hands a detached store.
        self._vault, self.sessions, self.allow_http, self.timeout = vault, sessions, allow_http, timeout
        self.allow_private = allow_private

    @property
    def vault(self) -> Vault:
        if not isinstance(self._vault, Vault):
            self._vault = Vault(tuple(self._vault))
        return self._vault

    def create_code(self, store: t.Store, cart: t.Cart | None, percent: int, ends_at: datetime) -> IssuedCode:
        if store.platform != "woocommerce":
            raise OfferUnavailable(f"no coupon support for {store.platform}")
        client = self._client(store)
        try:
            for _ in range(2):  # a code already taken on the store (astronomically rare) gets one more try
                try:
                    created = client.create_coupon(
                        coupon_body(new_code(), percent, ends_at, cart.email if cart else None)
                    )
                except WooError as exc:
                    if exc.code == TAKEN:
                        continue
                    raise OfferUnavailable(str(exc)) from None
                if not isinstance(created.get("id"), int) or not created.get("code"):
                    raise OfferUnavailable("POST coupons: the answer has no id or code")
                return IssuedCode(str(created["code"]), str(created["id"]))
            raise OfferUnavailable("no unique coupon code could be made")
        finally:
            client.close()

    def delete_unused(self, store: t.Store, code: t.DiscountCode) -> str:
        if store.platform != "woocommerce":
            raise OfferUnavailable(f"no coupon support for {store.platform}")
        if not code.platform_id or not code.platform_id.isdigit():
            return "deleted"
        client = self._client(store)
        try:
            coupon = client.get_coupon(int(code.platform_id))
            if int(coupon.get("usage_count") or 0) > 0:
                return "used"  # the order references it: the merchant's records keep it
            client.delete_coupon(int(code.platform_id))
        except WooError as exc:
            if exc.status == 404:
                return "deleted"  # already gone (the merchant deleted it)
            raise OfferUnavailable(str(exc)) from None
        finally:
            client.close()
        return "deleted"

    def _client(self, store: t.Store) -> WooClient:
        query = select(t.WooConnection.store_url).where(t.WooConnection.store_id == store.id)
        session = object_session(store)
        if session is not None:
            store_url = session.scalar(query)
        elif self.sessions is not None:
            with self.sessions() as own:
                store_url = own.scalar(query)
        else:
            store_url = None
        if store_url is None or store.credentials is None or not store.active:
            raise OfferUnavailable("the store is not connected")
        try:
            keys = self.vault.open(store.credentials)
            return WooClient(
                store_url,
                keys["consumer_key"],
                keys["consumer_secret"],
                allow_http=self.allow_http,
                timeout=self.timeout,
                allow_private=self.allow_private,
            )
        except (ValueError, KeyError) as exc:  # plain-http store without the development flag, unusable key
            raise OfferUnavailable(str(exc)) from None


def cleanup_store(
    sessions: sessionmaker[Session], offers: WooOffers, store_id: int, limit: int = 50
) -> dict[str, int]:
    """Delete this store's expired, unused codes; used ones stay on the store and are only marked here."""
    counts = {"deleted": 0, "used": 0, "failed": 0}
    with sessions() as session:
        ids = session.scalars(
            select(t.DiscountCode.id)
            .where(
                t.DiscountCode.store_id == store_id,
                t.DiscountCode.deleted_at.is_(None),
                t.DiscountCode.ends_at < utcnow(),
            )
            .order_by(t.DiscountCode.ends_at)
            .limit(limit)
        ).all()
    for code_id in ids:
        with sessions.begin() as session:
            row = session.get(t.DiscountCode, code_id, with_for_update=True)
            store = session.get(t.Store, store_id)
            if row is None or store is None or row.deleted_at is not None:
                continue
            try:
                outcome = offers.delete_unused(store, row)
            except OfferUnavailable as exc:
                counts["failed"] += 1
                log.info("woocommerce coupon %s not cleaned up yet: %s", code_id, exc)
                continue
            row.deleted_at, row.outcome = utcnow(), outcome
            counts[outcome] += 1
    return counts
