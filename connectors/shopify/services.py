"""Everything that talks to Shopify for one process, built once from Settings (see app/runtime.py)."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from connectors.shopify import domains, reconcile, tokens
from connectors.shopify.admin import AdminClient
from connectors.shopify.auth import ShopifyConfig
from connectors.shopify.discounts import ShopifyOffers
from recovery.sequence import offers
from recovery.storage.crypto import Vault
from recovery.config.settings import Settings
from recovery.sequence.timing import Timing

log = logging.getLogger(__name__)

#: How often each periodic platform job may run (per process).
CADENCE = {"refresh": 60.0, "reconcile": 300.0, "cleanup": 600.0}
#: Each store is reconciled at most this often.
RECONCILE_EVERY = timedelta(minutes=15)
#: Seconds an exit code may take on Shopify (connect and read) before the popup asks for an email instead.
EXIT_TIMEOUT = 2.5


@dataclass
class ShopifyServices:
    config: ShopifyConfig
    vault: Vault
    sessions: sessionmaker[Session]
    tokens: tokens.TokenSource
    admin: AdminClient
    offers: ShopifyOffers
    timing: Timing = field(default_factory=Timing)
    #: Exit-popup codes: the shopper's browser waits for them, so one try with a short timeout.
    exit_offers: ShopifyOffers | None = None
    #: Calls made while someone waits (install): few retries, short backoff.
    quick_admin: AdminClient | None = None
    _last: dict[str, float] = field(default_factory=dict)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        # First runs one cadence after start: a process that lives a few seconds (a CLI call, a test) makes no calls.
        self._last = {name: time.monotonic() for name in CADENCE}

    def sync_origins(self, store_id: int) -> None:
        """The shop's storefront domains into `allowed_origins` (after install); never raises."""
        domains.sync_origins_quietly(self.sessions, self.quick_admin or self.admin, store_id, self.config.app_url)

    def due_jobs(self, clock: float | None = None) -> list[str]:
        clock = time.monotonic() if clock is None else clock
        due = [name for name, every in CADENCE.items() if clock - self._last.get(name, float("-inf")) >= every]
        for name in due:
            self._last[name] = clock
        return due

    def run_jobs(self, names: list[str]) -> dict[str, object]:
        results: dict[str, object] = {}
        if "refresh" in names:
            results["refresh"] = self.tokens.refresh_due()
        if "reconcile" in names:
            results["reconcile"] = reconcile.reconcile_due(self.sessions, self.admin, RECONCILE_EVERY, self.timing)
        if "cleanup" in names:
            results["cleanup"] = offers.cleanup_expired(self.sessions, self.offers)
            with self.sessions.begin() as session:
                tokens.purge_states(session)
        return results

    def tick(self, threads: list[threading.Thread] | None = None) -> None:
        """Called by every dispatcher pass: cheap unless a job is due, and then it runs in a thread
        (added to `threads`, which the runtime joins on close)."""
        if self._thread is not None and self._thread.is_alive():
            return
        names = self.due_jobs()
        if not names:
            return
        self._thread = threading.Thread(target=self._run_logged, args=(names,), name="shopify-jobs", daemon=True)
        self._thread.start()
        if threads is not None:
            threads[:] = [t for t in threads if t.is_alive()] + [self._thread]

    def _run_logged(self, names: list[str]) -> None:
        try:
            self.run_jobs(names)
        except Exception:  # a failing job must not kill the dispatcher; the next cadence tries again
            log.exception("shopify periodic jobs %s failed", names)


def build(settings: Settings, sessions: sessionmaker[Session], timing: Timing) -> ShopifyServices | None:
    """None without app credentials: no platform calls, offer steps go out as plain reminders."""
    if not (settings.shopify_api_key and settings.shopify_api_secret):
        return None
    config = ShopifyConfig(
        api_key=settings.shopify_api_key,
        api_secret=settings.shopify_api_secret,
        api_secret_old=settings.shopify_api_secret_old,
        admin_base=settings.shopify_admin_base,
        api_version=settings.shopify_api_version,
        scopes=settings.shopify_scopes,
        app_url=settings.app_url,
    )
    vault = Vault(settings.encryption_keys)
    source = tokens.TokenSource(sessions, vault, config)
    admin = AdminClient(config, source)
    # The send path holds row locks while it makes a code: a short retry budget there.
    send_admin = AdminClient(config, source, max_attempts=2, max_delay=2.0)
    exit_config = dataclasses.replace(config, timeout=EXIT_TIMEOUT)
    exit_admin = AdminClient(exit_config, source, max_attempts=1, max_delay=0.5)
    return ShopifyServices(
        config, vault, sessions, source, admin, ShopifyOffers(send_admin, vault), timing,
        exit_offers=ShopifyOffers(exit_admin, vault), quick_admin=send_admin,
    )
