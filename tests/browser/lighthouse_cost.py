"""Storefront cost of the tracker: Lighthouse 12.2.3 on the test product page with and without it.

    .venv/bin/python -m tests.browser.lighthouse_cost [--runs 3]

Needs `cd .ci/node && npm ci` and /usr/bin/chromium. Runs alternate (with, without, with, ...) in
the same process so machine load hits both sides alike; prints the median performance score of
each side, the score drop, and the main-thread time the tracker adds. Not part of the pytest suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from tests.browser.storefront import Collector, Served, Storefront

ROOT = Path(__file__).resolve().parents[2]
LIGHTHOUSE = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "lighthouse"
FLAGS = "--headless=new --no-sandbox --disable-gpu --disable-background-networking --disable-component-update"


def audit(url: str, out: Path) -> dict[str, float]:
    env = {**os.environ, "CHROME_PATH": os.environ.get("CHROME_PATH", "/usr/bin/chromium")}
    subprocess.run([str(LIGHTHOUSE), url, "--quiet", "--only-categories=performance", "--output=json",
                    f"--output-path={out}", f"--chrome-flags={FLAGS}"], check=True, env=env, timeout=180)
    report = json.loads(out.read_text())
    audits = report["audits"]
    return {
        "score": report["categories"]["performance"]["score"] * 100,
        "main_thread_ms": audits["mainthread-work-breakdown"]["numericValue"],
        "script_ms": audits["bootup-time"]["numericValue"],
        "tbt_ms": audits["total-blocking-time"]["numericValue"],
        "transfer_kb": audits["total-byte-weight"]["numericValue"] / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    collector = Collector()
    served_collector = Served(collector.app())
    sides = {}
    for name, with_tracker in (("with", True), ("without", False)):
        front = Storefront(collector=collector, collector_url=served_collector.url + "/track",
                           with_tracker=with_tracker)
        sides[name] = Served(front.app())
    results: dict[str, list[dict[str, float]]] = {"with": [], "without": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.runs):
                for name, served in sides.items():
                    results[name].append(audit(served.url + "/products/linen-shirt", Path(tmp) / f"{name}{i}.json"))
    finally:
        for served in (*sides.values(), served_collector):
            served.close()
    median = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in results.items()}
    for name, m in median.items():
        print(f"{name:8} tracker: score {m['score']:.0f}, main thread {m['main_thread_ms']:.0f} ms, "
              f"script {m['script_ms']:.0f} ms, TBT {m['tbt_ms']:.0f} ms, transfer {m['transfer_kb']:.1f} KB "
              f"(median of {args.runs})")
    print(f"performance score drop: {median['without']['score'] - median['with']['score']:.0f} points")
    print(f"main-thread time added: {median['with']['main_thread_ms'] - median['without']['main_thread_ms']:.0f} ms")


if __name__ == "__main__":
    main()
