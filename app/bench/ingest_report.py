"""The ingest benchmark's verdicts against the targets of issue 3, and its printed report."""

from __future__ import annotations

from typing import Any

from app.bench.ingest import TARGET_P99_MS, TARGET_RATE, TARGET_RATIO


def verdicts(d: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """(target, passed, measured) for each target of issue 3."""
    fixed, loss = d["fixed_rate"], d["loss"]
    errors = d["bare"]["errors"] + d["webhook"]["errors"] + fixed["errors"]
    at_rate = d["config"]["rate"] >= TARGET_RATE
    return [
        (f"webhook/bare throughput ≥ {TARGET_RATIO:.2f}", d["ratio"] >= TARGET_RATIO, f"{d['ratio']:.2f}"),
        (
            f"p99 ≤ {TARGET_P99_MS:.0f} ms at {TARGET_RATE}/s"
            + ("" if at_rate else f" (run at {d['config']['rate']}/s)"),
            fixed["p99_ms"] <= TARGET_P99_MS and at_rate,
            f"{fixed['p99_ms']:.1f} ms",
        ),
        ("zero errors", errors == 0, str(errors)),
        (
            "zero loss (every 2xx stored)",
            loss["missing"] == 0 and loss["acked"] == loss["acked_distinct"],
            f"{loss['missing']} missing of {loss['acked']}",
        ),
        (
            "every stored delivery handed to the workers",
            loss["unrelayed"] == 0,
            f"{loss['unrelayed']} left, relay caught up {loss['relay_catch_up_s']:.2f} s after the load",
        ),
    ]


def passed(d: dict[str, Any]) -> bool:
    return all(ok for _, ok, _ in verdicts(d))


def format_ingest(d: dict[str, Any]) -> str:
    c = d["config"]
    bare, hook, fixed, loss = d["bare"], d["webhook"], d["fixed_rate"], d["loss"]
    lines = [
        f"ingest — gunicorn -w {c['workers']} -k {c['worker_class']}, PostgreSQL + Redis, {c['cpus']} CPUs, "
        f"{c['body_bytes']} B checkouts/update bodies, {d['started_at']}",
        "",
        f"max throughput (closed loop, {c['connections']} connections, {c['duration_s']:g} s each, "
        f"bare and webhook taking turns in {c['rounds']} rounds)",
        f"  {'':<27}{'req/s':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}",
    ]
    for name, r in (("bare", bare), ("webhook", hook)):
        lines.append(
            f"  {name:<8}{'POST ' + r['path']:<19}{r['rps']:>8.0f}{r['p50_ms']:>9.1f}{r['p90_ms']:>9.1f}"
            f"{r['p99_ms']:>9.1f}{r['max_ms']:>9.1f}{r['errors']:>8}"
        )
    lines += [
        f"  ratio webhook/bare: {d['ratio']:.2f}",
        "",
        f"fixed rate (open loop, {fixed['target_rps']:g}/s for {c['duration_s']:g} s on /webhooks/shopify, "
        "latency from the scheduled send time)",
        f"  {fixed['responses']} of {fixed['scheduled']} answered, {fixed['rps']:.0f}/s; "
        f"p50 {fixed['p50_ms']:.1f} ms, "
        f"p99 {fixed['p99_ms']:.1f} ms, p99.9 {fixed['p999_ms']:.1f} ms, max {fixed['max_ms']:.1f} ms, "
        f"> 1 s: {fixed['over_1s']}, errors {fixed['errors']}",
        f"  of which waiting to be sent (generator loop, or all {fixed['inflight']} connection slots busy): "
        f"p50 {fixed['dispatch_lag_p50_ms']:.2f} ms, p99 {fixed['dispatch_lag_p99_ms']:.2f} ms",
    ]
    if fixed["target_rps"] > hook["rps"]:
        lines.append(
            f"  The offered {fixed['target_rps']:g}/s is above the webhook capacity measured above "
            f"({hook['rps']:.0f}/s): these latencies are queueing, and requests still unanswered "
            f"{c['timeout_s']:g} s after their scheduled time count as timeouts (errors)."
        )
    lines += [
        "",
        f"loss: {loss['acked']} webhooks acknowledged with 2xx (warm-up included), {loss['stored']} stored, "
        f"{loss['missing']} missing"
        + (f" (e.g. {', '.join(loss['missing_sample'])})" if loss["missing"] else ""),
    ]
    kinds: dict[str, int] = {}
    for r in (bare, hook, fixed):
        for k, v in r["error_kinds"].items():
            kinds[k] = kinds.get(k, 0) + v
    if kinds:
        lines.append(f"error kinds: {kinds}")
    lines += ["", "targets (issue 3)"]
    for target, ok, measured in verdicts(d):
        lines.append(f"  {'PASS' if ok else 'FAIL'}  {target:<44} {measured}")
    if "cpu_busy" in bare:
        lines += [
            "",
            f"CPU in cores (of {c['cpus']}) {'':<8}{'server':>9}{'postgres':>9}{'redis':>7}"
            f"{'loadgen':>9}{'other':>7}{'total':>7}",
        ]
        for name, r in (
            ("max throughput, bare", bare),
            ("max throughput, webhook", hook),
            ("fixed rate, webhook", fixed),
        ):
            lines.append(
                f"  {name:<26}{r['cpu_server']:>9.2f}{r['cpu_postgres']:>9.2f}{r['cpu_redis']:>7.2f}"
                f"{r['generator_cpu_share']:>9.2f}{r['cpu_unaccounted']:>7.2f}{r['cpu_busy']:>7.2f}"
            )
        lines.append(
            f"  {'idle box, before the run':<26}{'':>34}{d['background_cores']:>7.2f}"
        )
        lines += [
            "",
            "CPU ms per answered request (robust to a busy neighbour)     server  postgres  redis",
        ]
        for name, r in (("bare", bare), ("webhook, max throughput", hook), ("webhook, fixed rate", fixed)):
            lines.append(
                f"  {name:<57}{r['server_cpu_ms_per_req']:>9.2f}{r['postgres_cpu_ms_per_req']:>10.2f}"
                f"{r['redis_cpu_ms_per_req']:>7.2f}"
            )
        lines.append(
            f"  CPU-cost ratio, bare server / webhook max throughput (server + postgres + redis): "
            f"{d['cpu_ratio']:.2f}, the throughput ratio to expect when nothing else competes for the cores"
        )
        if fixed["errors"]:
            lines.append(
                "  (the fixed-rate row also carries the work done for requests answered after their sender "
                "gave up, so it is high)"
            )
    lines += [
        "",
        f"caveats: the load generator ({bare['generator_engine']} engine, app/bench/loadgen.py, "
        f"{c['generator_procs']} process) shares the {c['cpus']} cores with gunicorn, PostgreSQL and Redis: "
        f"it used {bare['generator_cpu_share']:.2f} cores in the bare phase, which the server could not use.",
    ]
    if bare.get("cpu_busy", 0.0) >= 0.9 * (c["cpus"] or 1):
        lines.append(
            "  The bare phase saturated the machine, so bare req/s measures this box (server + generator), "
            "not "
            "the server alone; a generator on another machine would raise it and lower the ratio."
        )
    noisy = max([d["background_cores"]] + [r.get("cpu_unaccounted", 0.0) for r in (bare, hook, fixed)])
    if noisy > 0.15:
        lines.append(
            f"  Something else used up to {noisy:.2f} cores during the run (column 'other'): figures are low "
            "and "
            "noisy; rerun on a quiet machine."
        )
    if any(r["built_on_the_fly"] for r in (bare, hook, fixed)):
        lines.append(
            "  Some requests were built during the run (past the pre-built count); a small generator cost."
        )
    return "\n".join(lines)
