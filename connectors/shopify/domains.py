"""The shop's storefront domains (allowed tracker origins, POST /track) and postal address from the Admin API.

`shop { primaryDomain { host url } domains { host url } }`: the primary domain is what shoppers see;
`domains` adds the others (e.g. www and bare, market domains). If an API version no longer has
`Shop.domains`, the primary domain alone is asked for. Run after install and by reconciliation.
"""

from __future__ import annotations

import logging
from typing import Any
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.shopify import pixel
from connectors.shopify.admin import AdminClient, AdminError
from recovery.storage import locks
from recovery.storage import tables as t
from recovery.config.stores import fill_postal_address
from recovery.intake.origins import normalize_origin, set_platform_origins

log = logging.getLogger(__name__)

DOMAINS = "query ShopDomains { shop { primaryDomain { host url } domains { host url } } }"
PRIMARY = "query ShopPrimaryDomain { shop { primaryDomain { host url } } }"
# `shopAddress` replaced `billingAddress` in 2026-01; CAN-SPAM wants the sender's postal address in every email.
#: The tracker's endpoint for the app embed (theme_extension/blocks/cartresq-embed.liquid reads
#: `app.metafields.cartresq.track_url`): an app-data metafield on our AppInstallation.
INSTALLATION = 'query AppInstallation { currentAppInstallation { id metafield(namespace: "cartresq", key: "track_url") { value } } }'
SET_METAFIELD = """mutation SetTrackUrl($metafields: [MetafieldsSetInput!]!) {
  metafieldsSet(metafields: $metafields) { metafields { id } userErrors { field message code } }
}"""
ADDRESS = "query ShopAddress { shop { name shopAddress { formatted(withCompanyName: true) } } }"


def fetch_origins(admin: AdminClient, shop: str) -> list[str]:
    """https origins of every storefront domain of the shop; raises AdminError (or NeedsReauth)."""
    try:
        data = admin.execute(shop, DOMAINS)
    except AdminError as exc:
        if not (exc.permanent and exc.code == "graphql_errors" and "domains" in str(exc)):
            raise
        data = admin.execute(shop, PRIMARY)
    node = data.get("shop") or {}
    domains = [node.get("primaryDomain") or {}, *(node.get("domains") or [])]
    # Storefronts are served over https only: an http:// URL from the API still means its https origin.
    hosts = [d["host"] for d in domains if isinstance(d, dict) and isinstance(d.get("host"), str)]
    origins = {normalize_origin(f"https://{host}") for host in hosts}
    return sorted(o for o in origins if o)


def sync_origins(sessions: sessionmaker[Session], admin: AdminClient, store_id: int) -> list[str] | None:
    """Fetch and store the shop's origins (a merchant's own `allowed_origins` is kept); None if unchanged."""
    with sessions() as session:
        store = session.get(t.Store, store_id)
        if store is None or not store.active or store.platform != "shopify":
            return None
        shop = store.domain
    origins = fetch_origins(admin, shop)  # no transaction is open during the call
    with sessions.begin() as session:
        store = session.scalar(select(t.Store).where(t.Store.id == store_id).with_for_update(**locks.STORE_EXCLUSIVE))
        if store is None or not set_platform_origins(store, origins):
            return None
    log.info("store %s: %d storefront origin(s) from Shopify", store_id, len(origins))
    return origins


def sync_address(sessions: sessionmaker[Session], admin: AdminClient, store_id: int) -> bool:
    """Fill the store's `postal_address` (and name) from Shopify when the merchant has not set one."""
    with sessions() as session:
        store = session.get(t.Store, store_id)
        if store is None or not store.active or (store.settings or {}).get("postal_address"):
            return False
        shop = store.domain
    node = admin.execute(shop, ADDRESS).get("shop") or {}
    lines = (node.get("shopAddress") or {}).get("formatted") or []
    address = ", ".join(str(line).strip() for line in lines if str(line).strip())
    if not address:
        return False
    with sessions.begin() as session:
        if not fill_postal_address(session, store_id, address, node.get("name")):
            return False
    log.info("store %s: postal address filled from Shopify", store_id)
    return True


def sync_track_url(sessions: sessionmaker[Session], admin: AdminClient, store_id: int, app_url: str) -> bool:
    """Point the web pixel and the app embed at our `/track`; True when the embed's metafield was written."""
    with sessions() as session:
        store = session.get(t.Store, store_id)
        if store is None or not store.active or store.platform != "shopify":
            return False
        shop = store.domain
    wanted = f"{app_url.rstrip('/')}/track"
    pixel.activate(admin, shop, wanted)  # checkout steps, where theme code cannot run
    node = admin.execute(shop, INSTALLATION).get("currentAppInstallation") or {}
    if (node.get("metafield") or {}).get("value") == wanted or not node.get("id"):
        return False
    field = {"ownerId": node["id"], "namespace": "cartresq", "key": "track_url", "type": "single_line_text_field", "value": wanted}
    result = admin.execute(shop, SET_METAFIELD, {"metafields": [field]}).get("metafieldsSet") or {}
    if result.get("userErrors"):
        raise AdminError(f"metafieldsSet: {result['userErrors'][0].get('message')}", permanent=True, code="user_errors")
    return True


def sync_origins_quietly(
    sessions: sessionmaker[Session], admin: AdminClient, store_id: int, app_url: str | None = None
) -> None:
    """For install and reconciliation: domains, postal address and (given our URL) the tracker endpoint;
    a failure is logged and retried next time."""
    steps: list[tuple[Any, str]] = [(sync_origins, "storefront domains"), (sync_address, "postal address")]
    if app_url:
        steps.append((partial(sync_track_url, app_url=app_url), "tracker endpoint"))
    for step, what in steps:
        try:
            step(sessions, admin, store_id)
        except Exception as exc:  # any platform or token failure: a convenience, never a blocker
            log.warning("store %s: %s not read (%s)", store_id, what, type(exc).__name__)
