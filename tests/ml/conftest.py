"""Shared fixtures for the send-time model tests: one small training run per test session.

Tests take these through fixtures only: importing `conftest` by name could pick up another folder's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from ml.train import fit, train

# Small enough to keep the folder fast, large enough for a stable AUC on simulator data.
N_SAMPLES = 3000
SEED = 11


@dataclass(frozen=True)
class Trained:
    model_dir: Path
    metadata: dict[str, Any]
    n_samples: int = N_SAMPLES
    seed: int = SEED


@dataclass(frozen=True)
class Fitted:
    model: Pipeline
    X_test: np.ndarray
    y_test: np.ndarray
    n_samples: int = N_SAMPLES
    seed: int = SEED


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    out = tmp_path_factory.mktemp("send_time")
    return Trained(model_dir=out, metadata=train(out, n_samples=N_SAMPLES, seed=SEED))


@pytest.fixture(scope="session")
def fitted() -> Fitted:
    # Refit separately from `trained`: training is deterministic, so this is the same estimator,
    # and parity tests against it also prove the refit that ml.bench relies on.
    model, X_test, y_test = fit(N_SAMPLES, SEED)
    return Fitted(model=model, X_test=X_test, y_test=y_test)
