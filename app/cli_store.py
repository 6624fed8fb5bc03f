"""`cartresq store ...`: register stores, list and remove them, change and reset their settings.

Validation is `recovery.config.store_settings` (the same rules the merchant app uses); this module only reads
arguments, runs one transaction per command and prints.
"""

from __future__ import annotations

import json

import click

from app.cli_errors import settings_or_exit


@click.group()
def store() -> None:
    """Register stores and manage their settings."""


@store.command("add")
@click.option("--platform", type=click.Choice(["shopify", "woocommerce"]), required=True)
@click.option("--shop", required=True, help="NAME.myshopify.com, or the WooCommerce store's host")
@click.option("--token", default=None, help="Admin API access token (stored encrypted)")
def store_add(platform: str, shop: str, token: str | None) -> None:
    """Register a store without the install flow (self-hosting, development)."""
    from connectors.shopify.webhooks import SHOP_DOMAIN
    from recovery.storage.crypto import Vault
    from recovery.config.stores import add_store

    shop = shop.strip().lower()
    if platform == "shopify" and not SHOP_DOMAIN.match(shop):
        raise click.ClickException(f"{shop!r} is not a NAME.myshopify.com domain")
    with _sessions() as (settings, session):
        created = add_store(session, platform=platform, domain=shop, vault=Vault(settings.encryption_keys), token=token)
        click.echo(f"store {created.domain} ({created.platform}) registered")


@store.command("list")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def store_list(as_json: bool) -> None:
    """List the registered stores."""
    from sqlalchemy import select

    from recovery.storage import tables as t

    with _sessions() as (_settings, session):
        stores = session.scalars(select(t.Store).order_by(t.Store.domain, t.Store.platform)).all()
        rows = [{"domain": s.domain, "platform": s.platform, "installed": s.active} for s in stores]
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("no stores; add one with `cartresq store add`")
    for row in rows:
        click.echo(f"{row['domain']:<40} {row['platform']:<12} {'installed' if row['installed'] else 'uninstalled'}")


@store.command("remove")
@click.argument("shop")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def store_remove(shop: str, yes: bool) -> None:
    """Delete a store and everything kept for it (carts, messages, orders, consents, deliveries)."""
    from recovery.consent.privacy import erase_shop
    from recovery.config.stores import get_store

    with _sessions() as (_settings, session):
        found = get_store(session, shop)
        if not yes:
            click.confirm(
                f"Delete {found.domain} ({found.platform}) and all its carts, messages and orders? This cannot be undone",
                abort=True,
            )
        erase_shop(session, found)
        click.echo(f"store {found.domain} ({found.platform}) removed")


@store.command("set")
@click.argument("shop")
@click.argument("pairs", nargs=-1, required=True)
def store_set(shop: str, pairs: tuple[str, ...]) -> None:
    """Change settings: KEY=VALUE ... (durations need a unit: 90s, 15m, 4h, 3d).

    The sequence is steps such as 'sequence=email:gentle_reminder, email:value_proposition+1d,
    sms:offer+2d>50, email:final_call+3d' (CHANNEL:TEMPLATE, +DELAY after abandonment, >MIN cart total).
    """
    from recovery.config.stores import get_store, set_settings

    with _sessions() as (_settings, session):
        changes = set_settings(session, get_store(session, shop), list(pairs))
        click.echo("set " + ", ".join(sorted(changes)))


@store.command("unset")
@click.argument("shop")
@click.argument("keys", nargs=-1, required=True)
def store_unset(shop: str, keys: tuple[str, ...]) -> None:
    """Put settings back to their defaults: KEY ..."""
    from recovery.config.stores import get_store, unset_settings

    with _sessions() as (_settings, session):
        unset_settings(session, get_store(session, shop), list(keys))
        click.echo("back to default: " + ", ".join(sorted(set(keys))))


@store.command("show")
@click.argument("shop")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def store_show(shop: str, as_json: bool) -> None:
    """Show a store and its effective settings (defaults included, marked)."""
    from recovery.config.store_settings import describe
    from recovery.config.stores import get_store

    with _sessions() as (_settings, session):
        found = get_store(session, shop)
        rows = describe(found.settings or {})
        if as_json:
            click.echo(json.dumps({"domain": found.domain, "platform": found.platform, "settings": dict(
                (k, v) for k, v, _ in rows), "defaults": sorted(k for k, _, d in rows if d), "installed": found.active}))
            return
        click.echo(f"{found.domain} ({found.platform}) {'installed' if found.active else 'uninstalled'}")
        for key, value, is_default in rows:
            click.echo(f"  {key:<22} {value or '-'}{'  (default)' if is_default else ''}")


@store.command("plan")
@click.argument("shop")
@click.argument("plan", type=click.Choice(["enterprise", "starter", "growth", "pro", "none"]))
def store_plan(shop: str, plan: str) -> None:
    """Set a store's plan by hand (Enterprise contracts; `none` ends it). Applies with CARTRESQ_BILLING=on."""
    from recovery.billing.subscriptions import apply_plan_change
    from recovery.model import PlanChanged
    from recovery.config.stores import get_store
    from recovery.storage.tables import utcnow

    with _sessions() as (_settings, session):
        found = get_store(session, shop)
        change = PlanChanged(provider="manual", status="cancelled" if plan == "none" else "active",
                             plan=None if plan == "none" else plan, subscription_id=f"manual:{plan}", event_at=utcnow())
        click.echo(f"{found.domain}: {apply_plan_change(session, found.id, change, utcnow())}")


class _sessions:
    """One transaction for a CLI command; domain errors become clean exit-code-1 messages, nothing written."""

    def __enter__(self):  # type: ignore[no-untyped-def]
        from recovery.storage.db import make_engine, make_sessionmaker
        from recovery.storage.schema import upgrade

        self.settings = settings_or_exit()
        upgrade(self.settings.database_url)
        self.engine = make_engine(self.settings.database_url)
        self.session = make_sessionmaker(self.engine)()
        self.session.begin()
        return self.settings, self.session

    def __exit__(self, exc_type, exc, tb):  # type: ignore[no-untyped-def]
        from recovery.config.stores import StoreError

        try:
            if exc_type is None:
                self.session.commit()
            else:
                self.session.rollback()
        finally:
            self.session.close()
            self.engine.dispose()
        if isinstance(exc, StoreError):
            raise click.ClickException(str(exc)) from None
        return False
