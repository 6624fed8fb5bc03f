"""Offline training of the send-time model: fit on simulated outcomes, export to ONNX, verify parity.

Usage: python -m ml.train --out models/ [--samples 20000] [--seed 7]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ml.design import MODEL_FEATURES, columns_from_raw, design
from ml.features import FEATURES
from ml.inference import META_FILE, MODEL_FILE, scorer_from_bytes
from ml.simulator import prior_history, simulate_outcomes

#: Largest tolerated |P_sklearn - P_onnxruntime| on the held-out rows; float32 trees sit near 1e-7.
PARITY_LIMIT = 1e-4
#: Pinned opsets keep the file loadable by older onnxruntime releases (1.18 reads opset 21).
TARGET_OPSET: dict[str, int] = {"": 17, "ai.onnx.ml": 3}
TEST_FRACTION = 0.25
#: Weak regularisation: ~25 columns against thousands of rows; shrinking the offset terms flattens the curve.
C_REG = 10.0
_LIBRARIES = ("numpy", "scikit-learn", "skl2onnx", "onnx", "onnxruntime", "protobuf")


class ParityError(RuntimeError):
    """The exported ONNX model does not reproduce the fitted estimator."""


def simulated_design(n_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Model rows (MODEL_FEATURES) and labels of `n_samples` simulated sends at uniformly random slots."""
    raw, y = simulate_outcomes(n_samples, seed)
    cols = columns_from_raw(raw, prior_history(raw, seed))
    return design(cols, raw[:, FEATURES.index("send_offset_hours")]), y


def new_model(seed: int = 7) -> Pipeline:
    """A logistic model on the smooth design: calibrated by construction (it fits log loss), smooth
    in the offset, and small enough to score a cart's 15 candidates in microseconds."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=C_REG, max_iter=2000, random_state=seed))


def fit_rows(
    X: np.ndarray, y: np.ndarray, seed: int = 7, sample_weight: np.ndarray | None = None
) -> tuple[Pipeline, np.ndarray, np.ndarray]:
    """Fit on model rows; return the model and the held-out rows and labels."""
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    X_train, X_test, y_train, y_test, w_train, _ = train_test_split(
        X, y, w, test_size=TEST_FRACTION, random_state=seed, stratify=y
    )
    model = new_model(seed)
    model.fit(X_train, y_train, logisticregression__sample_weight=w_train)
    model.cov_ = coefficient_cov(model, X_train, w_train)  # saved with the model for ml.decide
    return model, X_test, y_test


def coefficient_cov(model: Pipeline, X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Covariance of the coefficients on raw model rows (Laplace approximation of the penalised fit):
    the inverse of X'WX plus the L2 penalty, mapped from the scaler's units back to the rows'."""
    scale = model[0].scale_
    Xi = np.column_stack([np.ones(len(X)), np.asarray(X, dtype=np.float64)])
    p = model.predict_proba(X)[:, 1]
    hessian = (Xi * (w * p * (1 - p))[:, None]).T @ Xi
    hessian[1:, 1:] += np.diag(scale**2) / model[-1].C
    return np.asarray(np.linalg.pinv(hessian)[1:, 1:], dtype=np.float64)


def fit(n_samples: int = 20000, seed: int = 7) -> tuple[Pipeline, np.ndarray, np.ndarray]:
    """Fit on `n_samples` simulated outcomes; return the model and the held-out rows and labels.

    Deterministic in (n_samples, seed), so `ml.bench` can refit the estimator behind a saved file.
    """
    X, y = simulated_design(n_samples, seed)
    return fit_rows(X, y, seed)


def export_onnx(model: Pipeline, sample: np.ndarray, *, zipmap: bool = False) -> bytes:
    """Serialize `model` to ONNX. With zipmap off, probabilities come out as a plain [n, 2] tensor."""
    from skl2onnx import to_onnx  # heavy import, only needed when exporting

    with warnings.catch_warnings():
        # skl2onnx 1.20 passes booleans as ints for nodes_missing_value_tracks_true; protobuf 6
        # only warns (protobuf 7 rejects it, hence protobuf<7). Harmless, and noisy by the hundred.
        warnings.filterwarnings(
            "ignore",
            message=r"Field onnx\.AttributeProto\.ints: Expected an int, got a boolean",
            category=DeprecationWarning,
        )
        onx = to_onnx(
            model, np.asarray(sample[:1], dtype=np.float32),
            options={LogisticRegression: {"zipmap": zipmap}}, target_opset=TARGET_OPSET,
        )  # fmt: skip
    return bytes(onx.SerializeToString())


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def _write_atomically(path: Path, data: bytes) -> None:
    # A serving process may load while we write: it must see the old file or the new, never half.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; serving may run as another user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model(
    model: Pipeline,
    X_test: np.ndarray,
    y_test: np.ndarray,
    out_dir: Path,
    *,
    n_samples: int,
    seed: int,
    source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Export, check ONNX parity on the held-out rows, then write `send_time.onnx` + `.json`.

    Raises ParityError (and writes nothing) if onnxruntime disagrees with scikit-learn.
    """
    p_sklearn = model.predict_proba(X_test)[:, 1]
    model_bytes = export_onnx(model, X_test)
    sha = hashlib.sha256(model_bytes).hexdigest()
    created = datetime.now(UTC).replace(microsecond=0)
    meta: dict[str, Any] = {
        "schema": 1,
        "model_file": MODEL_FILE,
        "features": list(MODEL_FEATURES),
        "version": f"{created:%Y%m%dT%H%M%SZ}-{sha[:12]}",
        "model_sha256": sha,
        "created_at": created.isoformat(),
        "trained_on": source or {
            "source": "simulator",
            "seed": seed,
            "n_samples": n_samples,
            "note": "Simulated shopper outcomes from ml.simulator, not real ones: "
            "retrain on logged outcomes once they exist.",
        },
        "model": {"estimator": "StandardScaler+LogisticRegression", "opset": TARGET_OPSET},
        # Not served until `cartresq evaluate` finds it beats the store's fixed delay off-policy.
        "promotion": {"promoted": False, "reason": "not evaluated on logged sends"},
        "libraries": _library_versions(),
        # ml.decide: the slot chosen is the best lower bound of the gain over the default delay.
        "coefficient_cov": model.cov_.tolist() if hasattr(model, "cov_") else None,
    }
    # Parity through the serving class itself, so what is checked is what will be served.
    p_onnx = scorer_from_bytes(model_bytes, meta).predict(X_test)
    parity = float(np.max(np.abs(p_onnx.astype(np.float64) - p_sklearn)))
    if not parity <= PARITY_LIMIT:  # also catches NaN
        raise ParityError(f"onnxruntime differs from scikit-learn by {parity:.3g} > {PARITY_LIMIT:g}")
    meta["metrics"] = {
        "roc_auc": float(roc_auc_score(y_test, p_sklearn)),
        "log_loss": float(log_loss(y_test, p_sklearn, labels=[0, 1])),
        "base_rate": float(np.mean(y_test)),
        "n_train": n_samples - len(y_test),
        "n_test": len(y_test),
        "onnx_parity_max_abs_diff": parity,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    # Model first: a reader that meets the new model with old metadata fails the hash check and
    # falls back for a moment, rather than serving a model under the wrong description.
    _write_atomically(out_dir / MODEL_FILE, model_bytes)
    _write_atomically(out_dir / META_FILE, (json.dumps(meta, indent=2) + "\n").encode())
    return meta


def record_promotion(model_dir: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Write an off-policy verdict into the model's metadata (`promotion`); serving reads it.

    Only `record["promoted"] is True` lets production serve the model instead of the fixed delay."""
    path = Path(model_dir) / META_FILE
    meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    meta["promotion"] = {**record, "evaluated_at": datetime.now(UTC).replace(microsecond=0).isoformat()}
    _write_atomically(path, (json.dumps(meta, indent=2) + "\n").encode())
    return meta


def train(out_dir: Path, n_samples: int = 20000, seed: int = 7) -> dict[str, Any]:
    """Fit on simulated outcomes and write `send_time.onnx` and `send_time.json`; return the metadata."""
    model, X_test, y_test = fit(n_samples, seed)
    return save_model(model, X_test, y_test, Path(out_dir), n_samples=n_samples, seed=seed)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.train", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="directory for send_time.onnx/.json")
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    meta = train(args.out, n_samples=args.samples, seed=args.seed)
    m = meta["metrics"]
    print(
        f"wrote {args.out / MODEL_FILE} version {meta['version']}: ROC AUC {m['roc_auc']:.3f}, "
        f"log loss {m['log_loss']:.3f}, base rate {m['base_rate']:.3f}, "
        f"parity {m['onnx_parity_max_abs_diff']:.2g} (simulated outcomes, not real ones)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
