"""The `cartresq` command line."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from recovery.settings import Settings


def _settings() -> Settings:
    return Settings.from_env()


@click.group()
def main() -> None:
    """CartResQ: abandoned-cart recovery for Shopify and WooCommerce."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run the web app (embedded default: also the worker and dispatcher, in-process)."""
    from werkzeug.serving import make_server

    from app import create_app
    from app.runtime import build_runtime
    from recovery.schema import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    runtime = build_runtime(settings)
    if settings.embedded:
        # No Redis: this process is the whole product. With Redis, run `cartresq worker` and `dispatcher`.
        from app.dispatcher import start_in_thread

        runtime.start_embedded_worker()
        start_in_thread(runtime)
    server = make_server(host, port, create_app(runtime=runtime), threaded=True)
    click.echo(f"CartResQ on http://{host}:{port}/ ({'embedded' if settings.embedded else 'redis'} mode)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        runtime.close()


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("dramatiq_args", nargs=-1, type=click.UNPROCESSED)
def worker(dramatiq_args: tuple[str, ...]) -> None:
    """Run Dramatiq workers (needs REDIS_URL). Extra arguments go to the dramatiq CLI."""
    if not _settings().redis_url:
        raise click.ClickException("REDIS_URL is not set: `cartresq serve` runs the worker in-process instead")
    args = ["dramatiq", "app.worker:setup", *dramatiq_args]
    os.execvp(sys.executable, [sys.executable, "-m", *args])


@main.command()
@click.option("--interval", default=1.0, show_default=True, help="seconds between passes")
def dispatcher(interval: float) -> None:
    """Run the dispatcher: abandons idle carts, enqueues due messages, re-enqueues lost work."""
    from app.dispatcher import run_forever
    from app.runtime import build_runtime

    runtime = build_runtime(_settings())
    try:
        run_forever(runtime, interval)
    finally:
        runtime.close()


@main.command()
@click.option("--no-serve", is_flag=True, help="print the summary and exit instead of serving the dashboard")
@click.option("--carts", default=300, show_default=True, type=click.IntRange(1, 5000))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--port", default=8000, show_default=True, type=int)
def demo(no_serve: bool, carts: int, seed: int, port: int) -> None:
    """Simulated store: shoppers, webhooks and orders through the real endpoints; prints a summary."""
    from app.demo import run

    run(carts=carts, seed=seed, port=port, serve=not no_serve)


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=None, help="model directory (default: var/model)")
@click.option("--samples", default=20000, show_default=True, type=int)
@click.option("--seed", default=7, show_default=True, type=int)
def train(out: Path | None, samples: int, seed: int) -> None:
    """Train the send-time model and export it to ONNX (on simulated outcomes until real ones exist)."""
    from ml.train import train as fit_and_export

    meta = fit_and_export(out or _settings().model_dir, n_samples=samples, seed=seed)
    click.echo(json.dumps(meta, indent=2, default=str))


@main.command()
@click.argument("names", nargs=-1)
def bench(names: tuple[str, ...]) -> None:
    """Run benchmarks (ingest, pipeline, score; default all) and print ratios against their baselines."""
    from app.bench import main as run_benches

    raise SystemExit(run_benches(list(names)))


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations."""
    from recovery.schema import upgrade

    upgrade(_settings().database_url)
    click.echo("database is at the latest schema")


@main.group()
def store() -> None:
    """Register stores and manage their settings."""


@store.command("add")
@click.option("--platform", type=click.Choice(["shopify", "woocommerce"]), required=True)
@click.option("--shop", required=True, help="NAME.myshopify.com, or the WooCommerce store's host")
@click.option("--token", default=None, help="Admin API access token (stored encrypted)")
def store_add(platform: str, shop: str, token: str | None) -> None:
    """Register a store without the install flow (self-hosting, development)."""
    from connectors.shopify.webhooks import SHOP_DOMAIN
    from recovery.crypto import Vault
    from recovery.stores import add_store

    shop = shop.strip().lower()
    if platform == "shopify" and not SHOP_DOMAIN.match(shop):
        raise click.ClickException(f"{shop!r} is not a NAME.myshopify.com domain")
    with _sessions() as (settings, session):
        created = add_store(session, platform=platform, domain=shop, vault=Vault(settings.encryption_keys), token=token)
        click.echo(f"store {created.domain} ({created.platform}) registered")


@store.command("set")
@click.argument("shop")
@click.argument("pairs", nargs=-1, required=True)
def store_set(shop: str, pairs: tuple[str, ...]) -> None:
    """Change settings: KEY=VALUE ... (durations accept 90s, 15m, 4h, 3d)."""
    from recovery.stores import get_store, set_settings

    with _sessions() as (_settings_, session):
        changes = set_settings(session, get_store(session, shop), list(pairs))
        click.echo("set " + ", ".join(sorted(changes)))


@store.command("show")
@click.argument("shop")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def store_show(shop: str, as_json: bool) -> None:
    """Show a store and its effective settings."""
    from recovery.store_settings import describe
    from recovery.stores import get_store

    with _sessions() as (_settings_, session):
        found = get_store(session, shop)
        rows = describe(found.settings or {})
        if as_json:
            click.echo(json.dumps({"domain": found.domain, "platform": found.platform, "settings": dict(
                (k, v) for k, v, _ in rows), "installed": found.active}))
            return
        click.echo(f"{found.domain} ({found.platform}) {'installed' if found.active else 'uninstalled'}")
        for key, value, is_default in rows:
            click.echo(f"  {key:<20} {value}{'  (default)' if is_default else ''}")


@main.command()
@click.option("--template", "templates", multiple=True, help="gentle_reminder, value_proposition, offer or final_call (default: all)")
@click.option("--locale", default="en-US", show_default=True, help="shopper locale, e.g. de-DE")
@click.option("--channel", type=click.Choice(["email", "sms"]), default="email", show_default=True)
def preview(templates: tuple[str, ...], locale: str, channel: str) -> None:
    """Print each message of the sequence rendered with an invented sample cart (subject + text part)."""
    from recovery.content import TEMPLATES, preview_sms
    from recovery.content import preview as preview_email

    for name in templates:
        if name not in TEMPLATES:
            raise click.BadParameter(f"{name!r}; expected one of {', '.join(TEMPLATES)}", param_hint="--template")
    for name in templates or TEMPLATES:
        click.echo(f"=== {name} ({channel}, {locale}) ===")
        if channel == "sms":
            click.echo(preview_sms(name, locale))
        else:
            rendered = preview_email(name, locale)
            click.echo(f"Subject: {rendered.subject}\n\n{rendered.text.strip()}")
        click.echo()


@main.group()
def shopify() -> None:
    """Shopify platform jobs."""


@shopify.command("reconcile")
@click.argument("shop", required=False)
def shopify_reconcile(shop: str | None) -> None:
    """Reconcile once now: SHOP, or every installed Shopify store with a usable token.

    Reads abandoned checkouts and orders missed by webhooks, checks the webhook subscriptions and the
    shop's storefront domains, exactly as the dispatcher's periodic job does. Exit code 1 on a failure.
    """
    from datetime import timedelta

    from sqlalchemy import select

    from connectors.shopify import reconcile, services
    from recovery import tables as t
    from recovery.db import make_engine, make_sessionmaker
    from recovery.schema import upgrade
    from recovery.timing import Timing

    settings = _settings()
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    try:
        platform = services.build(settings, sessions, Timing(settings.time_scale))
        if platform is None:
            raise click.ClickException("Shopify is not configured: set SHOPIFY_API_KEY and SHOPIFY_API_SECRET")
        if shop is None:
            outcomes = reconcile.reconcile_due(sessions, platform.admin, timedelta(0), platform.timing)
            with sessions() as session:
                names = {row.id: row.domain for row in session.execute(select(t.Store.id, t.Store.domain))}
            for store_id, outcome in sorted(outcomes.items()):
                click.echo(f"{names.get(store_id, store_id)}: {outcome}")
            if not outcomes:
                click.echo("no installed Shopify store with a usable token")
            failed = any(o.startswith("failed") for o in outcomes.values())
        else:
            with sessions() as session:
                store_id = session.scalar(
                    select(t.Store.id).where(t.Store.platform == "shopify", t.Store.domain == shop.strip().lower())
                )
            if store_id is None:
                raise click.ClickException(f"no Shopify store {shop!r}; add it with `cartresq store add`")
            try:
                report = reconcile.reconcile_store(sessions, platform.admin, store_id, platform.timing)
            except Exception as exc:  # auth or API failure: say which, exit 1
                click.echo(f"{shop}: failed: {type(exc).__name__}: {exc}"[:300], err=True)
                raise SystemExit(1) from None
            filled = f"; {report.filled} filled in (missed webhooks)" if report.filled else ""
            click.echo(f"{shop}: {report.checkouts} checkouts, {report.orders} orders{filled}")
            failed = False
    finally:
        engine.dispose()
    if failed:
        raise SystemExit(1)


class _sessions:
    """One transaction for a CLI command; domain errors become clean exit-code-1 messages, nothing written."""

    def __enter__(self):  # type: ignore[no-untyped-def]
        from recovery.db import make_engine, make_sessionmaker
        from recovery.schema import upgrade

        self.settings = _settings()
        upgrade(self.settings.database_url)
        self.engine = make_engine(self.settings.database_url)
        self.session = make_sessionmaker(self.engine)()
        self.session.begin()
        return self.settings, self.session

    def __exit__(self, exc_type, exc, tb):  # type: ignore[no-untyped-def]
        from recovery.stores import StoreError

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


__import__("app.effectiveness").effectiveness.register(main)  # `evaluate`, `train --from-db` (issue 21)

if __name__ == "__main__":
    main()
