"""Serving the send-time model with onnxruntime and numpy only (no scikit-learn in web/worker).

`send_time_model(path)` is what callers use: a scorer when the model is good, a fixed delay
otherwise, so a missing or broken model file never blocks a reminder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort

from ml.decide import choose, home_slot, lower_gains
from ml.design import MODEL_FEATURES, cart_columns, cart_design, design
from ml.features import DEFAULT_OFFSETS, CartValue

FEATURES = MODEL_FEATURES  # the served model's input columns

log = logging.getLogger(__name__)

MODEL_FILE = "send_time.onnx"
META_FILE = "send_time.json"


class ModelError(ValueError):
    """A model file or its metadata cannot be served."""


class SendTimePolicy(Protocol):
    """The port callers depend on: anything that picks a delay for a cart."""

    @property
    def version(self) -> str: ...

    def best_offset(
        self, cart: Mapping[str, CartValue], offsets: Sequence[float] = DEFAULT_OFFSETS
    ) -> float: ...


@dataclass(frozen=True)
class FixedSendTime:
    """The fallback policy: always the same delay, whatever the cart."""

    offset_hours: float = 1.0
    version: str = "fixed"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.offset_hours) and self.offset_hours >= 0):
            raise ValueError("offset_hours must be a finite, non-negative number of hours")

    def best_offset(self, cart: Mapping[str, CartValue], offsets: Sequence[float] = DEFAULT_OFFSETS) -> float:
        return self.offset_hours


class SendTimeScorer:
    """One onnxruntime session; `score` runs all candidate offsets of a cart in one batch.

    The hot path (`predict` of a batch of the usual size, `score`, `best_offset`) runs through an
    io binding onto buffers preallocated per thread: no per-call input/output allocation nor name
    lookup inside onnxruntime, which halved the p50 and most of the tail in `cartresq bench score`.
    """

    def __init__(
        self, session: ort.InferenceSession, metadata: Mapping[str, Any], default_hours: float = 1.0
    ) -> None:
        self._session = session
        self.default_hours = default_hours
        self.metadata = dict(metadata)
        self.version = str(self.metadata.get("version", "unknown"))
        inputs = session.get_inputs()
        if len(inputs) != 1 or inputs[0].shape[-1] not in (len(FEATURES), None):
            raise ModelError(f"expected one input of width {len(FEATURES)}")
        self._input = inputs[0].name
        self._output, self._zipmap = _probability_output(session)
        self._local = threading.local()  # a binding and its buffers are not shared between threads
        cov = self.metadata.get("coefficient_cov")
        self.cov = np.asarray(cov, dtype=np.float64) if cov is not None else None
        if self.cov is not None and self.cov.shape != (len(FEATURES), len(FEATURES)):
            raise ModelError("coefficient_cov does not match the feature count")

    def _bound(self, n: int) -> tuple[Any, np.ndarray, np.ndarray] | None:
        """(binding, input buffer, output buffer) for batches of n rows, on this thread; None for zipmap."""
        if self._zipmap:
            return None
        cache: dict[int, tuple[Any, np.ndarray, np.ndarray]] = getattr(self._local, "bound", None) or {}
        self._local.bound = cache
        bound = cache.get(n)
        if bound is None:
            rows = np.zeros((n, len(FEATURES)), dtype=np.float32)
            out = np.zeros((n, 2), dtype=np.float32)
            binding = self._session.io_binding()
            binding.bind_cpu_input(self._input, rows)
            binding.bind_output(self._output, "cpu", 0, np.float32, out.shape, out.ctypes.data)
            bound = cache[n] = (binding, rows, out)
        return bound

    def _run_bound(self, bound: tuple[Any, np.ndarray, np.ndarray]) -> np.ndarray:
        binding, _, out = bound
        self._session.run_with_iobinding(binding)
        return out[:, 1].copy()  # the buffer is reused by the next call

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """P(convert) for each feature row (FEATURES order), as float32."""
        batch = np.asarray(rows)
        bound = self._bound(len(batch)) if batch.ndim == 2 and len(batch) == len(DEFAULT_OFFSETS) else None
        if bound is not None and batch.shape[1] == len(FEATURES):
            bound[1][...] = batch  # casts to float32 in place
            return self._run_bound(bound)
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        result = self._session.run([self._output], {self._input: batch})[0]
        if self._zipmap:  # list of {label: probability} dicts
            return np.fromiter((row[1] for row in result), dtype=np.float32, count=len(result))
        return np.asarray(result, dtype=np.float32)[:, 1]

    def score(self, cart: Mapping[str, CartValue], offsets: Sequence[float] = DEFAULT_OFFSETS) -> np.ndarray:
        if offsets is DEFAULT_OFFSETS and (bound := self._bound(len(DEFAULT_OFFSETS))) is not None:
            bound[1][...] = design(cart_columns(cart), _DEFAULT_COLUMN)
            return self._run_bound(bound)
        return self.predict(cart_design(cart, offsets))

    def best_offset(self, cart: Mapping[str, CartValue], offsets: Sequence[float] = DEFAULT_OFFSETS) -> float:
        """The slot whose gain over the default delay's slot is best at its lower confidence bound
        (ml.decide), or the default slot when no bound clears the near-tie margin."""
        rows = cart_design(cart, offsets)
        home = home_slot(offsets, self.default_hours)
        return float(offsets[choose(lower_gains(self.predict(rows), rows, self.cov, home), home)])


_DEFAULT_COLUMN = np.asarray(DEFAULT_OFFSETS, dtype=np.float64)


def _probability_output(session: ort.InferenceSession) -> tuple[str, bool]:
    # Converters name and order outputs differently; look for the [n, 2] float tensor instead
    # (zipmap off) and accept the zipmap sequence-of-maps form too.
    outputs = session.get_outputs()
    for out in outputs:
        if out.type == "tensor(float)" and len(out.shape) == 2 and out.shape[1] == 2:
            return out.name, False
    for out in outputs:
        if out.type.startswith("seq(map(int64"):
            return out.name, True
    raise ModelError("no probability output of two classes")


def _session(model_bytes: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # One thread each: a 15-row batch gains nothing from a pool, and workers run many processes.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # our own warning says what went wrong, once
    return ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])


def scorer_from_bytes(
    model_bytes: bytes, metadata: Mapping[str, Any], default_hours: float = 1.0
) -> SendTimeScorer:
    """Build and smoke-test a scorer; raises ModelError (or an onnxruntime error) if unusable."""
    if list(metadata.get("features", ())) != list(FEATURES):
        raise ModelError("feature order in metadata differs from ml.design.MODEL_FEATURES")
    if metadata.get("model_sha256") != hashlib.sha256(model_bytes).hexdigest():
        raise ModelError("model file does not match the sha256 in its metadata")
    scorer = SendTimeScorer(_session(model_bytes), metadata, default_hours)
    probe = scorer.score({}, DEFAULT_OFFSETS)
    if probe.shape != (len(DEFAULT_OFFSETS),) or not np.all((probe >= 0) & (probe <= 1)):
        raise ModelError("model returned no valid probabilities for a neutral cart")
    return scorer


_warned: set[str] = set()
_lock = threading.Lock()


def _warn_once(path: Path, reason: str) -> None:
    key = str(path.absolute())
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning("send-time model %s unusable (%s); using a fixed send time instead", key, reason)


def load_scorer(model_path: Path, default_hours: float = 1.0) -> SendTimeScorer | None:
    """Load `model_path` and the `.json` metadata beside it; None (one warning per path) if unusable."""
    model_path = Path(model_path)
    try:
        metadata = json.loads(model_path.with_suffix(".json").read_text(encoding="utf-8"))
        if not isinstance(metadata, dict):
            raise ModelError("metadata is not a JSON object")
        return scorer_from_bytes(model_path.read_bytes(), metadata, default_hours)
    except Exception as exc:  # any failure at all must degrade to the fallback, never raise
        _warn_once(model_path, f"{type(exc).__name__}: {exc}")
        return None


_cache: dict[tuple[str, float], tuple[tuple[int, ...] | None, SendTimeScorer | None]] = {}


def _file_state(model_path: Path) -> tuple[int, ...] | None:
    try:
        files = (model_path.stat(), model_path.with_suffix(".json").stat())
    except OSError:
        return None
    return tuple(v for st in files for v in (st.st_ino, st.st_size, st.st_mtime_ns))


def promoted(metadata: Mapping[str, Any]) -> bool:
    """Whether `cartresq evaluate` recorded that this model beat the fixed delay off-policy."""
    record = metadata.get("promotion")
    return isinstance(record, Mapping) and record.get("promoted") is True


def send_time_model(
    path: Path, fallback_hours: float = 1.0, *, require_promotion: bool = False
) -> SendTimeScorer | FixedSendTime:
    """The scorer for `path`, or FixedSendTime(fallback_hours) if it is missing or unusable, or
    (with `require_promotion`, as production serves) not promoted by an off-policy evaluation.

    Cheap to call per cart: the session is reused until either file changes on disk.
    """
    model_path = Path(path)
    key = (str(model_path.absolute()), float(fallback_hours))
    state = _file_state(model_path)
    with _lock:
        cached = _cache.get(key)
    if cached is not None and cached[0] == state:
        scorer = cached[1]
    else:
        scorer = load_scorer(model_path, fallback_hours) if state is not None else None
        if state is None:
            _warn_once(model_path, "model or metadata file not found")
        with _lock:
            _cache[key] = (state, scorer)
    if scorer is None or (require_promotion and not promoted(scorer.metadata)):
        return FixedSendTime(fallback_hours)
    return scorer
