"""The latency benchmark reports both runtimes on the same rows from the same model."""

from __future__ import annotations

from typing import Any

import pytest

from ml.bench import bench_score, format_report


def test_bench_reports_latencies_ratio_and_agreement(trained: Any) -> None:
    # Given a saved model / When benchmarked briefly
    d = bench_score(trained.model_dir, repeats=30)
    # Then both runtimes have ordered percentiles and the ratio is of their medians
    for runtime in ("ort", "sklearn", "best_offset"):
        assert 0 < d[f"{runtime}_p50_us"] <= d[f"{runtime}_p99_us"]
    assert d["speedup_p50"] == pytest.approx(d["sklearn_p50_us"] / d["ort_p50_us"])
    # And the refit estimator is the one in the file
    assert d["max_abs_diff"] <= 1e-5 and d["same_model"]
    assert d["rows"] == 15 and d["model_version"] == trained.metadata["version"]
    report = format_report(d)
    assert f"{d['ort_p50_us']:.1f}" in report and f"{d['speedup_p50']:.1f}x" in report
