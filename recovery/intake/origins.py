"""Which web origins may send a store's beacons and push subscriptions: the shop's own domain, the domains
the platform reports (`set_platform_origins`), and those the merchant set (`allowed_origins`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from recovery.config.store_settings import effective
from recovery.storage import locks
from recovery.storage import tables as t


def normalize_origin(origin: str | None) -> str | None:
    """`https://Shop.example.com:443/` → `https://shop.example.com`; None for anything else."""
    if not origin or origin == "null":
        return None
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.path not in ("", "/"):
        return None
    default = {"https": 443, "http": 80}[parts.scheme]
    suffix = f":{port}" if port and port != default else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{suffix}"


def allowed_origins(store: t.Store) -> set[str]:
    """The shop's own domain is always allowed; `allowed_origins` adds primary and custom domains."""
    return origins_of(store.settings or {}, store.domain)


def origins_of(settings: dict[str, Any], domain: str) -> set[str]:
    """`allowed_origins` for a store's stored settings and domain (without loading the store)."""
    configured = effective(settings or {})["allowed_origins"]
    origins = {normalize_origin(o) for o in configured} | {normalize_origin(f"https://{domain}")}
    return {o for o in origins if o}


#: Internal settings key: the origins last written from the platform (not a merchant setting).
PLATFORM_ORIGINS = "allowed_origins_platform"


def set_platform_origins(store: t.Store, origins: list[str]) -> bool:
    """Store the shop's domains (from the platform) as `allowed_origins`, unless the merchant set them.

    The merchant's value is the one `cartresq store set` wrote: stored, and not what the platform gave
    last time. Returns whether anything changed.
    """
    stored = dict(store.settings or {})
    clean = sorted({o for o in (normalize_origin(x) for x in origins) if o and o != f"https://{store.domain}"})
    explicit = "allowed_origins" in stored and stored["allowed_origins"] != stored.get(PLATFORM_ORIGINS)
    if explicit or (stored.get("allowed_origins") == clean and stored.get(PLATFORM_ORIGINS) == clean):
        return False
    stored["allowed_origins"] = stored[PLATFORM_ORIGINS] = clean
    store.settings = stored  # a new dict, so the JSON column is seen as changed
    return True


def find_store(session: Session, shop: str, *, lock: bool = False) -> t.Store | None:
    """The active store named by a beacon; `lock` takes a SHARE lock (see apply_beacon)."""
    query = select(t.Store).where(t.Store.domain == shop.lower(), t.Store.uninstalled_at.is_(None)).limit(1)
    if lock:
        query = query.with_for_update(**locks.STORE_SHARED)  # before any cart: recovery/storage/locks.py
    return session.scalars(query).first()


def origin_known(session: Session, origin: str) -> bool:
    """Preflights carry no body, so no shop: answer for an origin that any active store allows."""
    parts = urlsplit(origin)
    host, netloc = parts.hostname or "", parts.netloc  # a store's domain keeps a non-default port (WooCommerce)
    if origin == f"https://{netloc}" and find_store(session, netloc) is not None:
        return True
    # A text match narrows the candidates; the parsed setting decides.
    candidates = session.scalars(
        select(t.Store)
        .where(t.Store.uninstalled_at.is_(None), cast(t.Store.settings, String).contains(host, autoescape=True))
        .limit(50)
    )
    return any(origin in allowed_origins(store) for store in candidates)
