"""Latency of scoring one cart's candidate offsets: onnxruntime vs the same scikit-learn model.

Usage: python -m ml.bench [--model-dir DIR] [--repeats 2000]
Offline tooling: imports scikit-learn (through ml.train) unlike the serving path.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from ml.design import cart_design
from ml.features import DEFAULT_OFFSETS
from ml.inference import META_FILE, MODEL_FILE, load_scorer
from ml.simulator import ShopperModel
from ml.train import fit, save_model

WARMUP = 100
#: Fitted estimator vs exported file agree this closely when the refit reproduced the model.
SAME_MODEL_LIMIT = 1e-4


def _timings_us(call: Callable[[], object], repeats: int) -> np.ndarray:
    for _ in range(WARMUP):  # first calls pay for allocations and lazy initialisation
        call()
    samples = np.empty(repeats, dtype=np.float64)
    for i in range(repeats):
        start = time.perf_counter_ns()
        call()
        samples[i] = time.perf_counter_ns() - start
    return samples / 1000.0


def bench_score(
    model_dir: Path | None = None, repeats: int = 2000, *, n_samples: int = 20000, seed: int = 7
) -> dict[str, Any]:
    """Time scoring DEFAULT_OFFSETS for one cart; p50/p99 in microseconds for both runtimes.

    Without `model_dir` a model is trained into a temporary directory. With one, the estimator
    is refit from the seed and sample count in its metadata (training is deterministic) and
    `max_abs_diff` shows whether that reproduced the file.
    """
    with tempfile.TemporaryDirectory(prefix="cartresq-bench-") as tmp:
        if model_dir is None:
            model, X_test, y_test = fit(n_samples, seed)
            model_dir = Path(tmp)
            save_model(model, X_test, y_test, model_dir, n_samples=n_samples, seed=seed)
        else:
            trained_on = json.loads((Path(model_dir) / META_FILE).read_text(encoding="utf-8"))["trained_on"]
            model, _, _ = fit(int(trained_on["n_samples"]), int(trained_on["seed"]))
        scorer = load_scorer(Path(model_dir) / MODEL_FILE)
        if scorer is None:
            raise RuntimeError(f"no usable model in {model_dir}")

        shopper = ShopperModel(seed).shopper(0)
        cart = shopper.features(hour_of_abandonment=20, day_of_week=4)
        rows = cart_design(cart, DEFAULT_OFFSETS)
        p_ort = scorer.predict(rows)
        # One thread for scikit-learn too, matching the onnxruntime session: a fair per-process view.
        with threadpool_limits(limits=1):
            p_sk = model.predict_proba(rows)[:, 1]
            sk = _timings_us(lambda: model.predict_proba(rows), repeats)
        ort_us = _timings_us(lambda: scorer.predict(rows), repeats)
        e2e_us = _timings_us(lambda: scorer.best_offset(cart), repeats)

    diff = float(np.max(np.abs(p_ort.astype(np.float64) - p_sk)))
    result: dict[str, Any] = {
        "rows": len(rows),
        "repeats": repeats,
        "model_version": scorer.version,
        "ort_p50_us": float(np.percentile(ort_us, 50)),
        "ort_p99_us": float(np.percentile(ort_us, 99)),
        "sklearn_p50_us": float(np.percentile(sk, 50)),
        "sklearn_p99_us": float(np.percentile(sk, 99)),
        "best_offset_p50_us": float(np.percentile(e2e_us, 50)),
        "best_offset_p99_us": float(np.percentile(e2e_us, 99)),
        "max_abs_diff": diff,
        "same_model": diff <= SAME_MODEL_LIMIT,
    }
    result["speedup_p50"] = result["sklearn_p50_us"] / result["ort_p50_us"]
    return result


def format_report(d: Mapping[str, Any]) -> str:
    lines = [
        f"send-time scoring, {d['rows']} candidate offsets per call, {d['repeats']} repeats, 1 thread",
        f"model {d['model_version']}",
        f"{'':<26}{'p50 us':>10}{'p99 us':>10}",
        f"{'onnxruntime (io binding)':<26}{d['ort_p50_us']:>10.1f}{d['ort_p99_us']:>10.1f}",
        f"{'scikit-learn predict_proba':<26}{d['sklearn_p50_us']:>10.1f}{d['sklearn_p99_us']:>10.1f}",
        f"{'best_offset (ort, e2e)':<26}{d['best_offset_p50_us']:>10.1f}{d['best_offset_p99_us']:>10.1f}",
        f"speed-up (sklearn p50 / ort p50): {d['speedup_p50']:.1f}x",
        f"max |P_ort - P_sklearn|: {d['max_abs_diff']:.2g}"
        + ("" if d["same_model"] else "  (NOT the same model)"),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.bench", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=20000, help="training size when no --model-dir")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print(format_report(bench_score(args.model_dir, args.repeats, n_samples=args.samples, seed=args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
