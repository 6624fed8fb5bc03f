"""The send-time port's adapter: the ONNX model, loaded on first use and reloaded when its files change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: A store's own model is served once it was trained on this many of the store's logged sends (and
#: promoted); below that the store leans on the pooled model (ml.learn.POOL_PRIOR_SENDS, kept equal).
OWN_MODEL_SENDS = 2000


def store_sends(metadata: Mapping[str, Any]) -> int:
    """How many of its own store's logged sends a per-store model was trained on (0 if unknown)."""
    source = metadata.get("trained_on")
    try:
        return int(source.get("store_sends") or 0) if isinstance(source, Mapping) else 0
    except (TypeError, ValueError):
        return 0


class LazySendTime:
    """Defers importing onnxruntime and reading the model until the first cart needs it.

    A missing or unreadable model falls back to a fixed time (ml.inference logs that once), and so
    does a model that `cartresq evaluate` has not promoted: the fixed delay is the incumbent until
    a challenger beats it off-policy. A promotion written later is picked up without a restart
    (ml.inference re-reads only when the files' inode, size or mtime change).

    `for_store(domain)` is what planning asks per cart: the store's own model
    (`<model dir>/stores/<domain>/`) when it is promoted and was trained on at least
    OWN_MODEL_SENDS of the store's logged sends, else the pooled model (the prior every store
    leans on), else the fixed delay.
    """

    def __init__(self, model_path: Path, fallback_hours: float = 1.0) -> None:
        self._path, self._fallback_hours = Path(model_path), fallback_hours

    def policy(self):  # type: ignore[no-untyped-def]
        from ml.inference import send_time_model

        return send_time_model(self._path, fallback_hours=self._fallback_hours, require_promotion=True)

    def for_store(self, domain: str | None) -> "LazySendTime":
        """The policy one store is served (see the class docstring)."""
        if not domain or "/" in domain or domain.startswith("."):
            return self
        return _StoreSendTime(self, self._path.parent / "stores" / domain / self._path.name)

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


class _StoreSendTime(LazySendTime):
    def __init__(self, pooled: LazySendTime, store_path: Path) -> None:
        super().__init__(store_path, pooled._fallback_hours)
        self._pooled = pooled

    def policy(self):  # type: ignore[no-untyped-def]
        from ml.inference import FixedSendTime, send_time_model

        if not self._path.exists():  # most stores have no model of their own: no warning for that
            return self._pooled.policy()
        own = send_time_model(self._path, fallback_hours=self._fallback_hours, require_promotion=True)
        if not isinstance(own, FixedSendTime) and store_sends(own.metadata) >= OWN_MODEL_SENDS:
            return own
        return self._pooled.policy()

    def for_store(self, domain: str | None) -> LazySendTime:
        return self._pooled.for_store(domain)
