"""Training: files, documented metadata, sane quality, and ONNX parity with scikit-learn."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.metrics import roc_auc_score

import ml.train
from ml.design import MODEL_FEATURES
from ml.train import ParityError, main, save_model


def test_training_writes_model_and_documented_metadata(trained: Any) -> None:
    # Given a model trained by the session fixture
    model_file = trained.model_dir / "send_time.onnx"
    meta_file = trained.model_dir / "send_time.json"
    # Then both files exist and the metadata on disk is what train() returned
    assert model_file.stat().st_size > 500
    meta = json.loads(meta_file.read_text())
    assert meta == trained.metadata
    assert meta["features"] == list(MODEL_FEATURES)
    assert meta["model_sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert meta["model_sha256"][:12] in meta["version"]
    # And it says plainly that the outcomes were simulated
    assert meta["trained_on"]["source"] == "simulator"
    assert meta["trained_on"]["seed"] == trained.seed and meta["trained_on"]["n_samples"] == trained.n_samples
    assert "not real" in meta["trained_on"]["note"]
    assert set(meta["metrics"]) >= {"roc_auc", "log_loss", "base_rate", "onnx_parity_max_abs_diff"}
    assert {"scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy"} <= set(meta["libraries"])
    created = datetime.fromisoformat(meta["created_at"])
    assert created.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - created).total_seconds()) < 3600


def test_held_out_metrics_are_sane_and_match_the_estimator(trained: Any, fitted: Any) -> None:
    metrics = trained.metadata["metrics"]
    # Then the model learned something real about the simulator
    assert metrics["roc_auc"] > 0.6
    # And the metrics were computed on the held-out rows, from the same (deterministic) estimator
    p = fitted.model.predict_proba(fitted.X_test)[:, 1]
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(fitted.y_test, p))
    assert metrics["base_rate"] == pytest.approx(float(np.mean(fitted.y_test)))
    assert (
        metrics["n_test"] == len(fitted.y_test) and metrics["n_train"] + metrics["n_test"] == fitted.n_samples
    )
    assert 0 < metrics["log_loss"] < 0.69  # better than a coin


def test_onnxruntime_matches_scikit_learn_on_held_out_rows(trained: Any, fitted: Any) -> None:
    # Given the exported file, read by a plain onnxruntime session (not our wrapper)
    sess = ort.InferenceSession(str(trained.model_dir / "send_time.onnx"), providers=["CPUExecutionProvider"])
    out = next(o.name for o in sess.get_outputs() if o.type == "tensor(float)")
    # When both score the held-out rows
    p_ort = sess.run([out], {sess.get_inputs()[0].name: fitted.X_test})[0][:, 1]
    p_sk = fitted.model.predict_proba(fitted.X_test)[:, 1]
    # Then they agree, and the metadata recorded that agreement
    assert np.max(np.abs(p_ort - p_sk)) <= 1e-5
    assert trained.metadata["metrics"]["onnx_parity_max_abs_diff"] <= 1e-5


def test_parity_failure_raises_and_writes_nothing(
    fitted: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a parity limit no export can meet
    monkeypatch.setattr(ml.train, "PARITY_LIMIT", -1.0)
    # When saving, Then it refuses and leaves no model behind for serving to pick up
    with pytest.raises(ParityError):
        save_model(
            fitted.model, fitted.X_test, fitted.y_test, tmp_path, n_samples=fitted.n_samples, seed=fitted.seed
        )
    assert list(tmp_path.iterdir()) == []


def test_cli_trains_into_the_given_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path / "m"), "--samples", "1200", "--seed", "3"]) == 0
    meta = json.loads((tmp_path / "m" / "send_time.json").read_text())
    assert meta["trained_on"]["n_samples"] == 1200 and meta["trained_on"]["seed"] == 3
    assert (tmp_path / "m" / "send_time.onnx").is_file()
    assert "simulated" in capsys.readouterr().out
