"""Benchmarks: `cartresq bench [NAMES...]` runs them and prints their reports (see each module)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def _ingest() -> dict[str, Any]:
    from app.bench.ingest import run_ingest

    return run_ingest()


def _format_ingest(result: dict[str, Any]) -> str:
    from app.bench.ingest_report import format_ingest

    return format_ingest(result)


def _pipeline() -> dict[str, Any]:
    from app.bench.pipeline import run_pipeline

    return run_pipeline()


def _format_pipeline(result: dict[str, Any]) -> str:
    from app.bench.pipeline import format_pipeline

    return format_pipeline(result)


def _track() -> dict[str, Any]:
    from app.bench.track import run_track

    return run_track()


def _format_track(result: dict[str, Any]) -> str:
    from app.bench.track import format_track

    return format_track(result)


def _lateness() -> dict[str, Any]:
    from app.bench.lateness import run_lateness

    return run_lateness()


def _format_lateness(result: dict[str, Any]) -> str:
    from app.bench.lateness import format_lateness

    return format_lateness(result)


def _history() -> dict[str, Any]:
    from app.bench.history import run_history

    return run_history()


def _format_history(result: dict[str, Any]) -> str:
    from app.bench.history import format_history

    return format_history(result)


def _flows() -> dict[str, Any]:
    from app.bench.flows import run_flows

    return run_flows()


def _format_flows(result: dict[str, Any]) -> str:
    from app.bench.flows import format_flows

    return format_flows(result)


def _dashboard() -> dict[str, Any]:
    from app.bench.dashboard import run_dashboard

    return run_dashboard()


def _format_dashboard(result: dict[str, Any]) -> str:
    from app.bench.dashboard import format_dashboard

    return format_dashboard(result)


def _score() -> dict[str, Any]:
    from ml.bench import bench_score

    return bench_score(repeats=3000)


def _format_score(result: dict[str, Any]) -> str:
    from ml.bench import format_report

    return format_report(result)


#: name → a full run with default settings, returning its figures. Modules are imported only when run.
BENCHES: dict[str, Callable[[], dict[str, Any]]] = {
    "ingest": _ingest,
    "pipeline": _pipeline,
    "score": _score,
    "track": _track,
    "lateness": _lateness,
    "history": _history,
    "flows": _flows,
    "dashboard": _dashboard,
}

#: Run only when named: `dashboard` seeds a 5-million-cart database the first time, `history` a 5-million-cart
#: history (minutes to half an hour, gigabytes).
ON_REQUEST = frozenset({"dashboard", "history"})

#: name → the readable report of a result; a bench without one is printed as JSON.
FORMATTERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "ingest": _format_ingest,
    "pipeline": _format_pipeline,
    "score": _format_score,
    "track": _format_track,
    "lateness": _format_lateness,
    "history": _format_history,
    "flows": _format_flows,
    "dashboard": _format_dashboard,
}


def main(names: list[str] | tuple[str, ...] = ()) -> int:
    """Run the named benches (all but ON_REQUEST when none is named) and print their reports; 0, or 2 for an unknown name."""
    import logging

    logging.getLogger("recovery").setLevel(logging.WARNING)  # one line per sent message would drown the report
    names = list(names) or [name for name in BENCHES if name not in ON_REQUEST]
    unknown = [name for name in names if name not in BENCHES]
    if unknown:
        print(f"unknown bench: {', '.join(unknown)} (known: {', '.join(BENCHES)})")
        return 2
    for n, name in enumerate(names):
        if n:
            print()
        result = BENCHES[name]()
        formatter = FORMATTERS.get(name)
        print(formatter(result) if formatter else json.dumps(result, indent=2, default=str), flush=True)
    return 0
