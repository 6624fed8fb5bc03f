"""`cartresq evaluate` and `cartresq train --from-db`: measured effectiveness from the command line.

Registered on the `cartresq` group by `register(main)` (one line in app/cli.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
import numpy as np

from app.bandit_checks import bandit_checks, bandit_report

__all__ = ["bandit_checks", "bandit_report", "evaluate", "lift_checks", "register"]


def _settings():  # type: ignore[no-untyped-def]
    from recovery.config.settings import Settings

    return Settings.from_env()


def _model_dir(store_domain: str | None) -> Path:
    """The pooled model's directory, or a store's own beside it (models/stores/SHOP): a per-store
    model never overwrites the one every store is served."""
    base = Path(_settings().model_dir)
    return base / "stores" / store_domain if store_domain else base


def _logged(store_domain: str | None):  # type: ignore[no-untyped-def]
    """(store id or None, logged sends with known labels) from the configured database."""
    from sqlalchemy import select

    from ml.learn import Send
    from recovery.storage import tables as t
    from recovery.storage.db import dispose, make_engine, make_sessionmaker
    from recovery.measure.send_log import logged_sends

    engine = make_engine(_settings().database_url)
    try:
        with make_sessionmaker(engine)() as session:
            store_id = None
            if store_domain:
                store_id = session.scalar(select(t.Store.id).where(t.Store.domain == store_domain))
                if store_id is None:
                    raise click.ClickException(f"no store {store_domain}")
            logs = logged_sends(session, None, now=datetime.now(UTC))
    finally:
        dispose(engine)
    sends = [Send(s.store_id, s.features, s.candidates, s.chosen, s.propensity, s.ordered) for s in logs]
    return store_id, sends


def lift_checks(n_experiments: int = 1000, shoppers: int = 2000, holdout_share: float = 0.5, seed: int = 5) -> dict[str, float]:
    """Coverage of the lift intervals and CUPED's variance reduction over simulated experiments."""
    from ml.lift_sim import experiments
    from recovery.measure import lift

    y, pre, treated, true = experiments(n_experiments, shoppers, holdout_share, seed)
    k1, n1 = (y * treated).sum(1), treated.sum(1)
    k0, n0 = (y * ~treated).sum(1), (~treated).sum(1)
    _, low, high = lift.newcombe(k1, n1, k0, n0)
    reductions, cuped_cover, seq_cover = [], 0, 0
    for e in range(n_experiments):
        plain = lift.mean_diff(y[e], treated[e])
        adjusted = lift.mean_diff(lift.cuped(y[e], pre[e], treated[e])[0], treated[e])
        reductions.append(1 - adjusted[1] / plain[1])
        cuped_cover += adjusted[2] <= true <= adjusted[3]
        _, s_low, s_high = lift.msprt(plain[0], plain[1])
        seq_cover += s_low <= true <= s_high
    return {
        "experiments": n_experiments, "shoppers": shoppers, "holdout_share": holdout_share, "true_lift": true,
        "newcombe_coverage": float(np.mean((low <= true) & (true <= high))),
        "cuped_coverage": cuped_cover / n_experiments, "sequential_coverage": seq_cover / n_experiments,
        "cuped_variance_reduction": float(np.median(reductions)),
    }  # fmt: skip


@click.command()
@click.option("--simulated", is_flag=True, help="measure on the simulator against the hidden truth")
@click.option("--seeds", default="1,2,3", show_default=True, help="simulated: fresh seeds, comma-separated")
@click.option("--carts", default=20_000, show_default=True, type=click.IntRange(100), help="simulated: carts per seed")
@click.option("--train-rows", default=15_000, show_default=True, type=click.IntRange(100), help="simulated: training sends")
@click.option("--experiments", default=1000, show_default=True, type=click.IntRange(10), help="simulated: lift experiments")
@click.option("--store", "store_domain", default=None, help="logged: evaluate on this store's sends only")
@click.option("--model-dir", type=click.Path(path_type=Path), default=None, help="logged: the challenger (default: var/model)")
@click.option("--dry-run", is_flag=True, help="logged: print the verdict without recording it in the model")
@click.option("--discounts", is_flag=True, help="logged: each discount arm's profit per shown offer (IPS), needs --store; "
              "with --simulated: only the discount bandit's figures")  # fmt: skip
@click.option("--bandit-seeds", default="11,3,5,7,13,17,19,23", show_default=True, help="simulated --discounts: seeds")
@click.option("--stores", "n_stores", default=100, show_default=True, type=click.IntRange(1), help="simulated --discounts: stores per seed")
@click.option("--offers", default=100_000, show_default=True, type=click.IntRange(250), help="simulated --discounts: shown offers per store")
@click.option("--horizons", default="20000,50000", show_default=True, help="simulated --discounts: also report after these many offers")
def evaluate(
    simulated: bool, seeds: str, carts: int, train_rows: int, experiments: int,
    store_domain: str | None, model_dir: Path | None, dry_run: bool, discounts: bool = False,
    bandit_seeds: str = "11,3,5,7,13,17,19,23", n_stores: int = 100, offers: int = 100_000, horizons: str = "",
) -> None:  # fmt: skip
    """Off-policy evaluation: challenger model vs the fixed delay (IPS and DR), promote or not.

    With --simulated: the send-time policy table on fresh simulator seeds, and the lift report's
    interval coverage and CUPED variance reduction over simulated experiments."""
    if simulated and discounts:
        try:
            seed_list, stops = _ints(bandit_seeds), tuple(_ints(horizons))
        except ValueError:
            raise click.BadParameter("seeds and horizons must be integers, comma-separated") from None
        for line in bandit_report(seed_list, n_stores=n_stores, offers=offers, horizons=stops):
            click.echo(line)
        return
    if simulated:
        from ml.evaluate import report, run_seed

        try:
            seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError:
            raise click.BadParameter("seeds must be integers, comma-separated") from None
        click.echo(f"send-time policy, {len(seed_list)} seeds x {carts} carts, model trained on {train_rows} sends")
        click.echo(report([run_seed(s, n_carts=carts, n_train=train_rows) for s in seed_list]))
        for shoppers, share in ((2000, 0.5), (1000, 0.1)):
            c = lift_checks(experiments, shoppers, share)
            click.echo(
                f"\nlift report over {c['experiments']} simulated experiments ({c['shoppers']} shoppers, "
                f"holdout {c['holdout_share']:.0%}, true lift {c['true_lift']:.2%}):\n"
                f"  95% Newcombe interval covers the true lift in {c['newcombe_coverage']:.1%}\n"
                f"  95% CUPED interval covers it in {c['cuped_coverage']:.1%}; CUPED cuts the variance by "
                f"{c['cuped_variance_reduction']:.0%} (median)\n"
                f"  always-valid 95% confidence sequence covers it in {c['sequential_coverage']:.1%}"
            )
        click.echo("")
        for line in bandit_report([11], horizons=(20_000, 50_000)):
            click.echo(line)
        return
    if discounts:
        if not store_domain:
            raise click.UsageError("--discounts needs --store")
        _discount_report(store_domain)
        return
    from ml.inference import MODEL_FILE, load_scorer
    from ml.learn import evaluate_logs
    from ml.train import record_promotion

    directory = model_dir or _model_dir(store_domain)
    scorer = load_scorer(directory / MODEL_FILE)
    if scorer is None:
        raise click.ClickException(f"no usable model in {directory} (train one with `cartresq train --from-db`)")
    store_id, sends = _logged(store_domain)
    sends = [s for s in sends if store_id is None or s.store_id == store_id]
    if len(sends) < 2:
        raise click.ClickException("fewer than two logged sends with a known outcome: nothing to evaluate yet")
    verdict = evaluate_logs(scorer, sends)
    click.echo(f"challenger {scorer.version} vs fixed 1 h on {len(sends)} logged first sends")
    for line in verdict.lines():
        click.echo(line)
    if not dry_run:
        record_promotion(directory, {
            "promoted": verdict.promote, "store": store_domain, "n_sends": len(sends),
            "challenger_dr": [verdict.challenger_dr.value, verdict.challenger_dr.low, verdict.challenger_dr.high],
            "incumbent_dr": [verdict.incumbent_dr.value, verdict.incumbent_dr.low, verdict.incumbent_dr.high],
            "difference_dr": [verdict.difference_dr.value, verdict.difference_dr.low, verdict.difference_dr.high],
        })  # fmt: skip
        click.echo(f"recorded in {directory}: {'served from now on' if verdict.promote else 'the fixed delay stays'}")


def _ints(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def _discount_report(store_domain: str) -> None:
    """What each discount arm would earn per shown offer had every shopper got it, from the recorded
    assignments and their propensities (recovery.measure.discount_eval)."""
    from sqlalchemy import select

    from recovery.measure import discount_eval
    from recovery.storage import tables as t
    from recovery.storage.db import dispose, make_engine, make_sessionmaker
    from recovery.config.store_settings import effective

    engine = make_engine(_settings().database_url)
    try:
        with make_sessionmaker(engine)() as session:
            store = session.scalar(select(t.Store).where(t.Store.domain == store_domain))
            if store is None:
                raise click.ClickException(f"no store {store_domain}")
            settings = effective(store.settings or {})
            logged = discount_eval.logged_assignments(session, store.id)
    finally:
        dispose(engine)
    margin = int(settings["margin_percent"]) / 100
    arms = [int(a) for a in settings.get("offer_arms") or []]
    if not logged:
        click.echo(f"{store_domain}: no discount assignments with a recorded probability yet")
        return
    for experiment, (logged_arms, propensity, ordered, values) in sorted(logged.items()):
        click.echo(f"{experiment}: {len(logged_arms)} assignments, margin {margin:.0%}; profit per shown offer had "
                   "every shopper got the arm (IPS, 95 % CI):")  # fmt: skip
        for value in discount_eval.arm_values(logged_arms, propensity, ordered, values, arms or sorted(set(logged_arms)), margin):
            click.echo(f"  {value}")


def _extend_train(train: click.Command) -> None:
    """Add --from-db and --store to the existing `cartresq train`."""
    original = train.callback
    assert original is not None
    train.params += [
        click.Option(["--from-db"], is_flag=True, help="train on logged first sends and their outcomes"),
        click.Option(["--store", "store_domain"], default=None, help="with --from-db: a model for this store, pooled with the others"),
    ]  # fmt: skip

    def callback(from_db: bool, store_domain: str | None, **kwargs):  # type: ignore[no-untyped-def]
        if not from_db:
            if store_domain:
                raise click.UsageError("--store needs --from-db")
            return original(**kwargs)
        from ml.learn import train_from_logs

        store_id, sends = _logged(store_domain)
        out = kwargs.get("out") or _model_dir(store_domain)
        try:
            meta = train_from_logs(sends, out, store=store_id, seed=kwargs.get("seed", 7))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"wrote {out} version {meta['version']} from {len(sends)} logged sends; "
                   "not served until `cartresq evaluate` promotes it")  # fmt: skip

    train.callback = callback


def register(main: click.Group) -> None:
    main.add_command(evaluate)
    _extend_train(main.commands["train"])
