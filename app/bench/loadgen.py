"""A small, bounded HTTP/1.1 load generator for loopback benchmarks (stdlib only, no wrk needed).

Runs in its own process (app/bench/loadgen_child.py, started by `run_phase`) so it never shares a GIL with
the code it measures. Protocol on stdin/stdout, one JSON line each: the parent writes the phase spec, the
child builds its requests before any clock starts and answers `{"ready": true}`, the parent writes
`{"go": <time.monotonic() start>}` (CLOCK_MONOTONIC is system-wide on Linux, so several children start
together), the child answers with its raw results. `run_phase()` does all of that and summarizes.

Two modes:

- closed loop: `connections` slots, each sends its next request as soon as the previous answer is read,
  until `duration` has passed; latency runs from the send (connect included) to the last body byte.
- open loop: exactly `rate × duration` requests, request i scheduled at start + i/rate whatever the server
  does; latency runs from the *scheduled* time, so a stalled server shows as queueing (no coordinated
  omission). In-flight requests are capped at `inflight`; the excess waits, and that wait is counted too.
  A request unanswered `timeout` seconds after its scheduled time is an error (as for a webhook sender).

Two engines: "epoll" (default on Linux: non-blocking sockets on one epoll, about half the CPU per request
of the other) and "asyncio" (streams from `asyncio.open_connection`; portable fallback).

HTTP: requests are pre-built raw bytes; responses are parsed by Content-Length. Keep-alive is used when the
server allows it and the connection is re-opened when it answers `Connection: close` (gunicorn sync workers
always do). Any non-2xx status, socket error, timeout or unreadable response is an error.

Every loop is bounded: no new request after `duration`, each request is cut at `timeout`, and the whole
process exits by itself at the latest `duration + timeout + 10 s` after its start.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: The generator process: a plain script, so it imports the standard library and the factory's file only.
CHILD = Path(__file__).resolve().with_name("loadgen_child.py")


def run_phase(
    *,
    host: str,
    port: int,
    mode: str,
    duration: float,
    factory: str,
    factory_args: dict[str, Any],
    connections: int = 32,
    rate: float = 0.0,
    inflight: int = 256,
    timeout: float = 5.0,
    procs: int = 1,
    prebuild: int | None = None,
    record_acked: bool = False,
    engine: str = "auto",
    build_timeout: float = 120.0,
    probe: Callable[[], Any] | None = None,
    keep_raw: bool = False,
) -> dict[str, Any]:
    """Run one phase in `procs` generator processes started together; returns the merged summary
    (with the processes' own results under "raw" if `keep_raw`, for `summarize_chunks`).

    `factory` is "module:function" or "/path/file.py:function"; function(**factory_args) must return a
    RequestFactory. Request indices
    are split between processes by stride, so every request of the phase is distinct. `probe`, if given, is
    called when the phase starts and when its results are in; both values are returned as "probes".
    """
    if mode not in ("closed", "open"):
        raise ValueError(f"mode must be 'closed' or 'open', not {mode!r}")
    if duration <= 0 or (mode == "open" and rate <= 0):
        raise ValueError("duration (and, for the open loop, rate) must be positive")
    procs = max(1, procs)
    count = math.ceil(rate * duration) if mode == "open" else 0
    specs = []
    for k in range(procs):
        spec = {
            "host": host,
            "port": port,
            "mode": mode,
            "duration": duration,
            "timeout": timeout,
            "factory": factory,
            "factory_args": factory_args,
            "stride": procs,
            "offset": k,
            "record_acked": record_acked,
            "engine": engine,
        }
        if mode == "closed":
            spec["connections"] = max(1, connections // procs + (1 if k < connections % procs else 0))
            spec["prebuild"] = prebuild if prebuild is not None else 0
            spec["prebuild"] = math.ceil(spec["prebuild"] / procs)
        else:
            spec["rate"] = rate
            spec["count"] = len(range(k, count, procs))
            spec["inflight"] = max(1, inflight // procs)
            spec["prebuild"] = spec["count"]
        specs.append(spec)

    children: list[subprocess.Popen[str]] = []
    try:
        for spec in specs:
            child = subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
                [sys.executable, str(CHILD)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONHASHSEED": "0"},
            )
            children.append(child)
            assert child.stdin is not None
            child.stdin.write(json.dumps(spec) + "\n")
            child.stdin.flush()
        for child in children:
            if not _read_json(child, build_timeout).get("ready"):
                raise RuntimeError("load generator did not get ready")
        start = time.monotonic() + 0.2
        for child in children:
            assert child.stdin is not None
            child.stdin.write(json.dumps({"go": start}) + "\n")
            child.stdin.flush()
        if probe is not None:
            time.sleep(max(0.0, start - time.monotonic()))
            first = probe()
        results = [_read_json(child, duration + timeout + 15.0) for child in children]
        last = probe() if probe is not None else None
    finally:
        for child in children:
            _reap(child)
    summary = summarize(results, mode=mode, duration=duration, scheduled=count, rate=rate)
    if probe is not None:
        summary["probes"] = (first, last)
    if keep_raw:
        summary["raw"] = results
    return summary


def summarize_chunks(chunks: list[dict[str, Any]], *, mode: str) -> dict[str, Any]:
    """One summary for several runs of the same phase (`run_phase(keep_raw=True)`), as if they were one
    run lasting their summed elapsed time: latencies pooled, req/s over the time they actually ran."""
    elapsed = sum(chunk["elapsed_s"] for chunk in chunks)
    results = [r for chunk in chunks for r in chunk["raw"]]
    summary = summarize(results, mode=mode, duration=sum(c["duration_s"] for c in chunks), elapsed=elapsed)
    summary["chunks"] = len(chunks)
    return summary


def _read_json(child: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError(f"load generator (pid {child.pid}) did not answer within {timeout:.0f}s")
    line = child.stdout.readline()
    if not line:
        raise RuntimeError(f"load generator (pid {child.pid}) exited with {child.wait(5)}")
    return json.loads(line)  # type: ignore[no-any-return]


def _reap(child: subprocess.Popen[str]) -> None:
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout=5)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of already sorted values; 0.0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize(
    results: list[dict[str, Any]],
    *,
    mode: str,
    duration: float,
    scheduled: int = 0,
    rate: float = 0.0,
    elapsed: float | None = None,
) -> dict[str, Any]:
    latencies = sorted(x for r in results for x in r["latencies"])
    lags = sorted(x for r in results for x in r["lags"])
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for r in results:
        statuses.update(r["statuses"])
        errors.update(r["errors"])
    if elapsed is None:  # one run: from the first start to the last end of its processes
        elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
    elapsed = max(elapsed, 1e-9)
    completed = len(latencies)
    ok = sum(v for k, v in statuses.items() if k.startswith("2"))
    ms = 1000.0
    summary: dict[str, Any] = {
        "mode": mode,
        "duration_s": duration,
        "elapsed_s": round(elapsed, 3),
        "requests": completed + sum(v for k, v in errors.items() if not k.startswith("http ")),
        "responses": completed,
        "ok": ok,
        "rps": ok / elapsed,
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "statuses": dict(statuses),
        "p50_ms": percentile(latencies, 50) * ms,
        "p90_ms": percentile(latencies, 90) * ms,
        "p99_ms": percentile(latencies, 99) * ms,
        "p999_ms": percentile(latencies, 99.9) * ms,
        "max_ms": (latencies[-1] if latencies else 0.0) * ms,
        "mean_ms": (sum(latencies) / completed if completed else 0.0) * ms,
        "over_1s": sum(1 for x in latencies if x > 1.0),
        "generator_cpu_s": sum(r["cpu"] for r in results),
        "generator_cpu_share": sum(r["cpu"] for r in results) / elapsed,
        "generator_procs": len(results),
        "generator_engine": results[0].get("engine", "?"),
        "built_on_the_fly": sum(r["on_the_fly"] for r in results),
        "acked": sorted(i for r in results for i in r["acked"]),
    }
    if mode == "open":
        summary.update(
            target_rps=rate,
            scheduled=scheduled,
            dispatch_lag_p50_ms=percentile(lags, 50) * ms,
            dispatch_lag_p99_ms=percentile(lags, 99) * ms,
            dispatch_lag_max_ms=(lags[-1] if lags else 0.0) * ms,
        )
    return summary
