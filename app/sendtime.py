"""The send-time port's adapter: the ONNX model, loaded once per process on first use."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path


class LazySendTime:
    """Defers importing onnxruntime and reading the model until the first cart needs it.

    A missing or unreadable model falls back to a fixed time (ml.inference logs that once).
    """

    def __init__(self, model_path: Path, fallback_hours: float = 1.0) -> None:
        self._path, self._fallback_hours = model_path, fallback_hours
        self._model: object | None = None
        self._lock = threading.Lock()

    def _load(self):  # type: ignore[no-untyped-def]
        with self._lock:
            if self._model is None:
                from ml.inference import send_time_model

                self._model = send_time_model(self._path, fallback_hours=self._fallback_hours)
        return self._model

    def best_offset(self, cart: Mapping[str, float], offsets: Sequence[float]) -> float:
        model = self._model or self._load()
        return float(model.best_offset(cart, offsets))  # type: ignore[attr-defined]
