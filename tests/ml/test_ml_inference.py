"""Serving: one batched onnxruntime call per cart, and a fixed delay whenever the model is unusable."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from ml.design import cart_design
from ml.features import DEFAULT_OFFSETS
from ml.decide import MARGIN, choose, home_slot, lower_gains
from ml.inference import FixedSendTime, SendTimeScorer, load_scorer, send_time_model
from ml.simulator import ShopperModel
from ml.train import export_onnx


def _carts(n: int) -> list[dict[str, float]]:
    model = ShopperModel(21)
    return [model.shopper(i).features(hour_of_abandonment=(5 * i) % 24, day_of_week=i % 7) for i in range(n)]


def _copy_model(trained: Any, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("send_time.onnx", "send_time.json"):
        shutil.copy(trained.model_dir / name, dest / name)
    return dest / "send_time.onnx"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "ml.inference" and r.levelno == logging.WARNING]


def _scorer(trained: Any) -> SendTimeScorer:
    scorer = load_scorer(trained.model_dir / "send_time.onnx")
    assert scorer is not None
    return scorer


def test_scores_match_scikit_learn_for_every_offset(trained: Any, fitted: Any) -> None:
    scorer = _scorer(trained)
    for cart in _carts(5):
        p = scorer.score(cart, DEFAULT_OFFSETS)
        expected = fitted.model.predict_proba(cart_design(cart, DEFAULT_OFFSETS))[:, 1]
        assert p.shape == (len(DEFAULT_OFFSETS),)
        assert np.max(np.abs(p - expected)) <= 1e-5


def test_score_is_one_batched_session_run(trained: Any) -> None:
    # Given a scorer whose session records its calls
    scorer = _scorer(trained)
    calls: list[int] = []
    real = scorer._session

    class Recording:
        def run(self, names: Any, feeds: dict[str, np.ndarray]) -> Any:
            calls.append(len(next(iter(feeds.values()))))
            return real.run(names, feeds)

        def io_binding(self) -> Any:  # the preallocated fast path binds its buffers once
            return real.io_binding()

        def run_with_iobinding(self, binding: Any) -> Any:
            calls.append(binding.get_outputs()[0].shape()[0])  # rows in the bound output
            return real.run_with_iobinding(binding)

    scorer._session = Recording()  # type: ignore[assignment]
    # When one cart is scored for all offsets
    scorer.best_offset(_carts(1)[0])
    # Then there was exactly one run, carrying every candidate
    assert calls == [len(DEFAULT_OFFSETS)]


def test_best_offset_is_the_best_lower_bound_else_the_default(trained: Any) -> None:
    scorer = _scorer(trained)
    assert scorer.cov is not None  # saved with the model
    custom = (0.75, 2.5, 1.0, 3.75)
    chosen, defaulted, moved = set(), 0, 0
    for cart in _carts(60):
        for offsets in (DEFAULT_OFFSETS, custom):
            rows = cart_design(cart, offsets)
            home = offsets.index(1.0)
            bounds = lower_gains(scorer.predict(rows), rows, scorer.cov, home)
            best = scorer.best_offset(cart, offsets)
            assert best in offsets
            if bounds.max() > MARGIN:
                assert best == offsets[int(np.argmax(bounds))]
                moved += 1
            else:  # no slot is clearly better: the store's fixed delay, not the earliest slot
                assert best == 1.0
                defaulted += 1
            chosen.add(best)
    assert len(chosen) > 1 and defaulted and moved  # the choice depends on the cart


def test_an_uncertain_gain_goes_to_the_default_slot() -> None:
    p = np.array([0.30, 0.20, 0.20, 0.25])
    rows = np.array([[1.0], [0.0], [0.0], [0.5]])  # one feature; slot 1 is the default (home)
    assert choose(lower_gains(p, rows, None, home=1), 1) == 0  # point estimates: slot 0 wins
    assert choose(lower_gains(p, rows, np.array([[0.01]]), home=1), 1) == 0  # well measured: still
    assert choose(lower_gains(p, rows, np.array([[1.0]]), home=1), 1) == 1  # too uncertain: default
    assert choose(lower_gains(np.full(4, 0.2), rows, None, home=2), 2) == 2  # a tie: default
    assert home_slot((0.5, 0.75, 1.25), 1.0) == 1  # ties between slots go to the earlier one


def test_session_is_single_threaded_on_cpu(trained: Any) -> None:
    session = _scorer(trained)._session
    assert session.get_providers() == ["CPUExecutionProvider"]
    options = session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1


def test_send_time_model_reuses_the_session_until_the_file_changes(trained: Any, tmp_path: Path) -> None:
    path = _copy_model(trained, tmp_path)
    first = send_time_model(path)
    assert isinstance(first, SendTimeScorer) and first.version == trained.metadata["version"]
    assert send_time_model(path) is first
    os.utime(path, ns=(1, 1))  # a redeploy changes the file
    assert send_time_model(path) is not first


def test_missing_model_falls_back_and_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ml.inference")
    path = tmp_path / "send_time.onnx"
    # When asked twice for a model that does not exist
    policies = [send_time_model(path, fallback_hours=2.0) for _ in range(2)]
    # Then both calls get the fixed delay, with one warning between them
    assert all(isinstance(p, FixedSendTime) and p.best_offset({}) == 2.0 for p in policies)
    assert len(_warnings(caplog)) == 1


def test_load_scorer_warns_once_per_path(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ml.inference")
    assert load_scorer(tmp_path / "a.onnx") is None and load_scorer(tmp_path / "a.onnx") is None
    assert len(_warnings(caplog)) == 1
    assert load_scorer(tmp_path / "b.onnx") is None
    assert len(_warnings(caplog)) == 2


@pytest.mark.parametrize("rehash", [False, True], ids=["hash-mismatch", "unparseable-onnx"])
def test_corrupt_model_file_falls_back_and_warns_once(
    trained: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, rehash: bool
) -> None:
    caplog.set_level(logging.WARNING, logger="ml.inference")
    path = _copy_model(trained, tmp_path)
    garbage = os.urandom(2048)
    path.write_bytes(garbage)
    if rehash:  # metadata vouches for the garbage, so onnxruntime itself must reject it
        meta = json.loads(path.with_suffix(".json").read_text())
        meta["model_sha256"] = hashlib.sha256(garbage).hexdigest()
        path.with_suffix(".json").write_text(json.dumps(meta))
    policies = [send_time_model(path, fallback_hours=1.5) for _ in range(2)]
    assert all(isinstance(p, FixedSendTime) and p.best_offset({}) == 1.5 for p in policies)
    assert len(_warnings(caplog)) == 1


def test_corrupt_metadata_falls_back(trained: Any, tmp_path: Path) -> None:
    path = _copy_model(trained, tmp_path)
    path.with_suffix(".json").write_bytes(b"\x00{not json")
    assert isinstance(send_time_model(path), FixedSendTime)


def test_wrong_feature_order_is_treated_as_unreadable(trained: Any, tmp_path: Path) -> None:
    # Given metadata whose feature order differs from ours (two columns swapped)
    path = _copy_model(trained, tmp_path)
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["features"][0], meta["features"][1] = meta["features"][1], meta["features"][0]
    path.with_suffix(".json").write_text(json.dumps(meta))
    # Then the model is not served
    assert load_scorer(path) is None
    assert isinstance(send_time_model(path), FixedSendTime)


def test_zipmap_exports_are_scored_too(trained: Any, fitted: Any, tmp_path: Path) -> None:
    # Given the same estimator exported with zipmap on (probabilities as a list of maps)
    data = export_onnx(fitted.model, fitted.X_test, zipmap=True)
    outputs = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).get_outputs()
    assert not any(o.type == "tensor(float)" for o in outputs)
    path = _copy_model(trained, tmp_path)
    path.write_bytes(data)
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["model_sha256"] = hashlib.sha256(data).hexdigest()
    path.with_suffix(".json").write_text(json.dumps(meta))
    # When loaded and scored, Then the probabilities are the estimator's
    scorer = load_scorer(path)
    assert scorer is not None
    cart = _carts(1)[0]
    expected = fitted.model.predict_proba(cart_design(cart, DEFAULT_OFFSETS))[:, 1]
    assert np.max(np.abs(scorer.score(cart) - expected)) <= 1e-5


def test_fixed_send_time_ignores_the_cart() -> None:
    policy = FixedSendTime(1.25)
    assert policy.best_offset({"cart_value": 999.0}) == 1.25 == policy.best_offset({}, (0.5, 4.0))
    with pytest.raises(ValueError):
        FixedSendTime(-1.0)


def test_model_that_does_not_match_its_metadata_is_not_served(
    trained: Any, fitted: Any, tmp_path: Path
) -> None:
    # Given a valid ONNX model next to metadata written for a different file (a half-done deploy)
    path = _copy_model(trained, tmp_path)
    path.write_bytes(export_onnx(fitted.model, fitted.X_test, zipmap=True))
    # Then the pair is rejected rather than served under the wrong description
    assert load_scorer(path) is None


def test_production_serves_only_a_promoted_model(trained: Any, tmp_path: Path) -> None:
    import shutil

    from ml.train import record_promotion

    shutil.copytree(trained.model_dir, tmp_path / "m")
    path = tmp_path / "m" / "send_time.onnx"
    assert isinstance(send_time_model(path, require_promotion=True), FixedSendTime)
    assert isinstance(send_time_model(path), SendTimeScorer)  # offline tools still load it
    record_promotion(tmp_path / "m", {"promoted": True})
    assert isinstance(send_time_model(path, require_promotion=True), SendTimeScorer)  # picked up on change
    record_promotion(tmp_path / "m", {"promoted": False})
    assert isinstance(send_time_model(path, require_promotion=True), FixedSendTime)
