"""The `cartresq` command line."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from app.cli_errors import Group, plain_request_logs, preflight, reachable, settings_or_exit
from recovery.config.settings import Settings


def _settings() -> Settings:
    return settings_or_exit()


@click.group(cls=Group)
@click.version_option(package_name="cartresq", prog_name="cartresq")
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
    from recovery.storage.schema import upgrade

    from app.web.access import check_exposure, is_loopback, with_local_token, with_served_url

    settings = with_served_url(_settings(), host, port)  # APP_URL unset: links use this port
    preflight(settings)
    check_exposure(settings, [host])  # no store data on a public address without the operator token
    if not is_loopback(host) and not (os.environ.get("APP_URL") or "").strip():
        click.echo(f"warning: APP_URL is not set, so links in messages (cart, unsubscribe, password reset) point at "
                   f"{settings.app_url}, which shoppers cannot reach: set APP_URL to this server's public address",
                   err=True)  # fmt: skip
    settings, local_token = with_local_token(settings)
    upgrade(settings.database_url)
    _hint_demo_data(settings)
    runtime = build_runtime(settings)
    if settings.embedded:
        # No Redis: this process is the whole product. With Redis, run `cartresq worker` and `dispatcher`.
        from app.dispatcher import start_in_thread

        runtime.start_embedded_worker()
        start_in_thread(runtime)
    server = make_server(host, port, create_app(runtime=runtime), threaded=True, request_handler=plain_request_logs())
    click.echo(f"CartResQ on http://{host}:{port}/ ({'embedded' if settings.embedded else 'redis'} mode)")
    if local_token:  # to the operator's terminal only; set CARTRESQ_ADMIN_TOKEN to choose it
        click.echo(f"sign in: open http://{host}:{port}/operator, any user name, password {local_token} (for this run only)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        runtime.close()


def _hint_demo_data(settings: Settings) -> None:
    """`make serve` after `make demo` would show an empty dashboard: the demo keeps its data in var/demo."""
    from sqlalchemy import func, select

    from recovery.storage import tables as t
    from recovery.storage.db import make_engine

    demo_db = settings.var_dir / "demo" / "cartresq.db"
    if not demo_db.exists():
        return
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            stores = connection.scalar(select(func.count()).select_from(t.Store))
    finally:
        engine.dispose()
    if not stores:
        click.echo(f"no stores here yet; the demo's data is in {demo_db.parent}: "
                   f"make serve VAR={demo_db.parent} (or CARTRESQ_VAR_DIR={demo_db.parent} cartresq serve)")


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("dramatiq_args", nargs=-1, type=click.UNPROCESSED)
def worker(dramatiq_args: tuple[str, ...]) -> None:
    """Run Dramatiq workers (needs REDIS_URL). Extra arguments go to the dramatiq CLI."""
    settings = _settings()
    if not settings.redis_url:
        raise click.ClickException("REDIS_URL is not set: `cartresq serve` runs the worker in-process instead")
    reachable(settings.redis_url, "REDIS_URL")  # a socket, not the full check: a worker must start fast
    args = ["dramatiq", "app.worker:setup", *dramatiq_args]
    os.execvp(sys.executable, [sys.executable, "-m", *args])


@main.command()
@click.option("--interval", default=1.0, show_default=True, help="seconds between passes")
def dispatcher(interval: float) -> None:
    """Run the dispatcher: abandons idle carts, enqueues due messages, re-enqueues lost work."""
    from app.dispatcher import run_forever
    from app.runtime import build_runtime

    from app.observability import setup_process

    settings = _settings()
    preflight(settings)
    setup_process(settings, "dispatcher")
    runtime = build_runtime(settings)
    try:
        run_forever(runtime, interval)
    finally:
        runtime.close()


@main.command()
@click.option("--carts", default=60, show_default=True, type=click.IntRange(10, 5000))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--keep", is_flag=True, help="keep the private instances' directory (logs) afterwards")
def drill(carts: int, seed: int, keep: bool) -> None:
    """Fault drills on private PostgreSQL and Redis instances; prints the drill table (JSON)."""
    from app.drill import run

    logging.getLogger("httpx").setLevel(logging.WARNING)
    click.echo(json.dumps(run(carts=carts, seed=seed, keep=keep), indent=2))


@main.command()
@click.option("--no-serve", is_flag=True, help="print the summary and exit (uses a free private port)")
@click.option("--carts", default=300, show_default=True, type=click.IntRange(1, 5000))
@click.option("--seed", default=7, show_default=True, type=int, help="same seed, same shoppers and reactions")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="dashboard port")
@click.option("--json", "as_json", is_flag=True, help="print the summary as one JSON document on stdout")
def demo(no_serve: bool, carts: int, seed: int, port: int, as_json: bool) -> None:
    """Simulated store: shoppers, webhooks and orders through the real endpoints; prints a summary."""
    from app.demo import DemoError, run
    from app.demo.progress import Progress

    try:
        run(carts=carts, seed=seed, port=port, serve=not no_serve, progress=Progress("demo", as_json))
    except DemoError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=None, help="model directory (default: var/model)")
@click.option("--samples", default=20000, show_default=True, type=int)
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="print the model's metadata as JSON on stdout")
def train(out: Path | None, samples: int, seed: int, as_json: bool) -> None:
    """Train the send-time model and export it to ONNX (on simulated outcomes until real ones exist)."""
    from app.demo.progress import Progress
    from ml.train import train as fit_and_export

    out = out or _settings().model_dir
    progress = Progress("train", as_json)
    with progress.working(f"fitting on {samples} simulated outcomes (seed {seed}), exporting to ONNX in {out}"):
        meta = fit_and_export(out, n_samples=samples, seed=seed)
    metrics = meta.get("metrics", {})
    human = (
        f"wrote {out}/send_time.onnx (version {meta.get('version')}): ROC AUC {metrics.get('roc_auc', float('nan')):.3f}, "
        f"log loss {metrics.get('log_loss', float('nan')):.3f}; trained on simulated outcomes, not real ones"
    )
    progress.result(human, meta)


@main.command()
@click.argument("names", nargs=-1)
def bench(names: tuple[str, ...]) -> None:
    """Run benchmarks (ingest, pipeline, score, track, lateness, flows; history and dashboard only by name) and print their figures."""
    from app.bench import main as run_benches

    raise SystemExit(run_benches(list(names)))


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations."""
    from recovery.storage.schema import upgrade

    upgrade(_settings().database_url)
    click.echo("database is at the latest schema")


@main.command()
@click.option("--template", "templates", multiple=True, help="gentle_reminder, value_proposition, offer or final_call (default: all)")
@click.option("--locale", default="en-US", show_default=True, help="shopper locale, e.g. de-DE")
@click.option("--channel", type=click.Choice(["email", "sms", "push"]), default="email", show_default=True)
def preview(templates: tuple[str, ...], locale: str, channel: str) -> None:
    """Print each message of the sequence rendered with an invented sample cart (subject + text part)."""
    from recovery.messages.content import TEMPLATES, preview_sms
    from recovery.messages.push_content import preview_push
    from recovery.messages.content import preview as preview_email

    for name in templates:
        if name not in TEMPLATES:
            raise click.BadParameter(f"{name!r}; expected one of {', '.join(TEMPLATES)}", param_hint="--template")
    for name in templates or TEMPLATES:
        click.echo(f"=== {name} ({channel}, {locale}) ===")
        if channel == "sms":
            click.echo(preview_sms(name, locale))
        elif channel == "push":
            title, body = preview_push(name, locale)
            click.echo(f"{title}\n{body}")
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
    from recovery.storage import tables as t
    from recovery.storage.db import make_engine, make_sessionmaker
    from recovery.storage.schema import upgrade
    from recovery.sequence.timing import Timing

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


from app.cli_store import store  # noqa: E402  (the `store` group lives in its own module)

main.add_command(store)
from app.cli_account import account  # noqa: E402  (`cartresq account create`)

main.add_command(account)

__import__("app.effectiveness").effectiveness.register(main)  # `evaluate`, `train --from-db` (issue 21)

if __name__ == "__main__":
    main()
