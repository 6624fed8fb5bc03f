"""Shopify tokens at rest: encrypted, refreshed before expiry with a compare-and-set, re-auth on failure.

Access and refresh token live in one Fernet ciphertext (`stores.credentials`): a refresh replaces both
with `UPDATE ... WHERE credentials = <the ciphertext we read>`, so of two refreshers racing only one
stores its pair (the loser's refresh token was already spent; it re-reads the winner's). An uninstall
clears `credentials`, dropping both tokens.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from connectors.shopify import auth
from recovery.measure import metrics
from recovery.storage import tables as t
from recovery.storage.crypto import Vault
from recovery.storage.tables import utcnow

log = logging.getLogger(__name__)

#: Refresh when the access token has less than this left (it lives 60 min).
REFRESH_MARGIN = timedelta(minutes=10)
STATE_TTL = timedelta(minutes=10)


class NeedsReauth(Exception):
    """The store has no usable token: platform calls stop until the merchant opens the app again."""


def save_tokens(session: Session, vault: Vault, shop: str, tokens: auth.Tokens) -> t.Store:
    """Install or re-install: create or revive the store row and store the tokens encrypted."""
    store = session.scalar(select(t.Store).where(t.Store.platform == "shopify", t.Store.domain == shop))
    if store is None:
        store = t.Store(platform="shopify", domain=shop, settings={}, plan="free", timezone="UTC", currency="USD")
        session.add(store)
    if store.uninstalled_at is not None or store.id is None:
        store.installed_at = utcnow()
    store.uninstalled_at = None
    store.credentials = vault.seal(
        {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token, "scope": tokens.scope}
    )
    store.access_token_expires_at = tokens.expires_at
    store.refresh_token_expires_at = tokens.refresh_expires_at
    store.needs_reauth_at = store.reauth_reason = None
    session.flush()
    return store


def has_usable_token(store: t.Store) -> bool:
    return store.active and store.credentials is not None and store.needs_reauth_at is None


def new_state(session: Session, shop: str) -> str:
    """A single-use state of 256 random bits, stored with its shop and an expiry."""
    state = secrets.token_urlsafe(32)
    session.add(t.OAuthState(state=state, shop=shop, created_at=utcnow(), expires_at=utcnow() + STATE_TTL))
    return state


def consume_state(session: Session, state: str, shop: str) -> bool:
    """True once for a live state issued for this shop; the row is deleted either way it matched."""
    if not state or len(state) > 64:
        return False
    row = session.scalar(select(t.OAuthState).where(t.OAuthState.state == state).with_for_update())
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return row.shop == shop and row.expires_at > utcnow()


def purge_states(session: Session) -> int:
    return session.execute(delete(t.OAuthState).where(t.OAuthState.expires_at < utcnow())).rowcount or 0


class TokenSource:
    """Hands out a valid access token per shop, refreshing first when it is (nearly) expired."""

    def __init__(self, sessions: sessionmaker[Session], vault: Vault, config: auth.ShopifyConfig) -> None:
        self.sessions, self.vault, self.config = sessions, vault, config

    def __call__(self, shop: str) -> str:
        with self.sessions() as session:
            store = session.scalar(select(t.Store).where(t.Store.platform == "shopify", t.Store.domain == shop))
            if store is None or not has_usable_token(store):
                raise NeedsReauth(f"{shop}: no usable access token")
            expires = store.access_token_expires_at
            token = self.vault.open(store.credentials)["access_token"]  # type: ignore[arg-type]
        if expires is not None and expires - REFRESH_MARGIN <= utcnow():
            token = self.refresh(shop)
        return str(token)

    def refresh(self, shop: str) -> str:
        """Refresh and store the new pair atomically; returns the access token now stored."""
        with self.sessions() as session:
            store = session.scalar(select(t.Store).where(t.Store.platform == "shopify", t.Store.domain == shop))
            if store is None or not has_usable_token(store):
                raise NeedsReauth(f"{shop}: no usable access token")
            store_id, old = store.id, store.credentials
            creds = self.vault.open(old)  # type: ignore[arg-type]
        if not creds.get("refresh_token"):
            return str(creds["access_token"])  # a non-expiring token (e.g. `store add --token`): nothing to do
        try:
            tokens = auth.refresh(self.config, shop, str(creds["refresh_token"]))
        except auth.TokenError as exc:
            metrics.token_refresh_failed(exc.permanent)
            if exc.permanent:
                if self._mark_reauth(store_id, old, exc.code):
                    raise NeedsReauth(f"{shop}: refresh failed ({exc.code})") from None
                return self._stored_token(store_id, shop)  # a concurrent refresher spent it and stored a new pair
            raise
        sealed = self.vault.seal({"access_token": tokens.access_token, "refresh_token": tokens.refresh_token, "scope": tokens.scope})
        with self.sessions.begin() as session:
            swapped = session.execute(
                update(t.Store)
                .where(t.Store.id == store_id, t.Store.credentials == old)
                .values(
                    credentials=sealed,
                    access_token_expires_at=tokens.expires_at,
                    refresh_token_expires_at=tokens.refresh_expires_at,
                )
                .execution_options(synchronize_session=False)
            ).rowcount
        if not swapped:
            # Someone else refreshed (or the shop uninstalled) meanwhile: their pair wins; use it.
            log.info("store %s: concurrent refresh, using the stored token", store_id)
            return self._stored_token(store_id, shop)
        log.info("store %s: access token refreshed", store_id)
        return tokens.access_token

    def _stored_token(self, store_id: int, shop: str) -> str:
        with self.sessions() as session:
            store = session.get(t.Store, store_id)
            if store is None or not has_usable_token(store):
                raise NeedsReauth(f"{shop}: no usable access token")
            return str(self.vault.open(store.credentials)["access_token"])  # type: ignore[arg-type]

    def _mark_reauth(self, store_id: int, old: bytes | None, code: str) -> bool:
        # Only if the credentials are still the ones that failed: a concurrent refresh or install wins.
        with self.sessions.begin() as session:
            marked = session.execute(
                update(t.Store)
                .where(t.Store.id == store_id, t.Store.credentials == old)
                .values(needs_reauth_at=utcnow(), reauth_reason=f"token refresh failed: {code}"[:200])
                .execution_options(synchronize_session=False)
            ).rowcount
        if marked:
            log.warning("store %s needs re-authorization (%s)", store_id, code)
        return bool(marked)

    def refresh_due(self, now: datetime | None = None, limit: int = 100) -> dict[str, str]:
        """The periodic job: refresh every token expiring within the margin. Returns shop → outcome."""
        cutoff = (now or utcnow()) + REFRESH_MARGIN
        with self.sessions() as session:
            shops = session.scalars(
                select(t.Store.domain)
                .where(
                    t.Store.platform == "shopify",
                    t.Store.uninstalled_at.is_(None),
                    t.Store.needs_reauth_at.is_(None),
                    t.Store.credentials.is_not(None),
                    t.Store.access_token_expires_at < cutoff,
                )
                .limit(limit)
            ).all()
        outcomes = {}
        for shop in shops:
            try:
                self.refresh(shop)
                outcomes[shop] = "refreshed"
            except NeedsReauth:
                outcomes[shop] = "needs re-authorization"
            except auth.TokenError as exc:  # transient: the next pass tries again
                outcomes[shop] = f"failed: {exc.code}"
        return outcomes
