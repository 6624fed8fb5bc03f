"""The send-time port's adapter: the ONNX model, loaded on first use and reloaded when its files change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path


class LazySendTime:
    """Defers importing onnxruntime and reading the model until the first cart needs it.

    A missing or unreadable model falls back to a fixed time (ml.inference logs that once), and so
    does a model that `cartresq evaluate` has not promoted: the fixed delay is the incumbent until
    a challenger beats it off-policy. A promotion written later is picked up without a restart
    (ml.inference re-reads only when the files' inode, size or mtime change).
    """

    def __init__(self, model_path: Path, fallback_hours: float = 1.0) -> None:
        self._path, self._fallback_hours = model_path, fallback_hours

    def policy(self):  # type: ignore[no-untyped-def]
        from ml.inference import send_time_model

        return send_time_model(self._path, fallback_hours=self._fallback_hours, require_promotion=True)

    @property
    def version(self) -> str:
        """The served policy's version ("fixed" for the fixed delay), logged with each decision."""
        return str(self.policy().version)

    def best_offset(self, cart: Mapping[str, float], offsets: Sequence[float]) -> float:
        return float(self.policy().best_offset(cart, offsets))

    def predicted(self, cart: Mapping[str, float], offset: float) -> float | None:
        """The served model's P(order) at `offset` (logged for calibration); None for the fixed delay."""
        policy = self.policy()
        return None if str(policy.version) == "fixed" else float(policy.score(cart, [offset])[0])
