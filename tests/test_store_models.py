"""Per-store send-time models are served: a store with >= 2,000 logged sends behind its own promoted
model gets it; other stores lean on the pooled model; nothing promoted serves the fixed delay."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from app.runtime import build_runtime
from app.sendtime import OWN_MODEL_SENDS, LazySendTime
from ml.learn import POOL_PRIOR_SENDS
from ml.train import record_promotion, train
from recovery.storage import tables as t
from recovery.sending.channels import FakeChannel
from tests.conftest import add_store, make_settings
from tests.loop_helpers import HOUR, abandon_all, now

BIG, SMALL, NEW = "big-outfitters.myshopify.com", "small-outfitters.myshopify.com", "new-outfitters.myshopify.com"


def _model(directory: Path, seed: int, *, promoted: bool, store_sends: int | None = None) -> str:
    meta = train(directory, n_samples=1500, seed=seed)
    if store_sends is not None:  # as ml.learn.train_from_logs records it for `train --from-db --store`
        path = directory / "send_time.json"
        data = json.loads(path.read_text())
        data["trained_on"] = {"source": "logged sends", "store_sends": store_sends}
        path.write_text(json.dumps(data))
    record_promotion(directory, {"promoted": promoted})
    return str(meta["version"])


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("models")
    versions = {
        "pooled": _model(base, 1, promoted=True),
        BIG: _model(base / "stores" / BIG, 2, promoted=True, store_sends=2500),
        SMALL: _model(base / "stores" / SMALL, 3, promoted=True, store_sends=800),
        "unpromoted": _model(base / "stores" / NEW, 4, promoted=False, store_sends=9000),
    }
    return base, versions


def test_the_threshold_is_the_pooling_prior() -> None:
    assert OWN_MODEL_SENDS == POOL_PRIOR_SENDS == 2000


def test_each_store_is_served_its_own_model_or_the_pooled_one(models: tuple[Path, dict[str, str]]) -> None:
    base, versions = models
    served = LazySendTime(base / "send_time.onnx")
    assert served.for_store(BIG).version == versions[BIG] != versions["pooled"]
    assert served.for_store(SMALL).version == versions["pooled"]  # 800 own sends: leans on the pool
    assert served.for_store(NEW).version == versions["pooled"]  # its own model is not promoted
    assert served.for_store("other.myshopify.com").version == versions["pooled"]  # no model of its own
    assert served.for_store("../../etc").version == versions["pooled"]  # a domain is never a path
    cart = {"hour_of_abandonment": 18, "device_type": "mobile", "cart_value": 80}
    big = served.for_store(BIG)
    assert big.best_offset(cart, [0.5, 1.0, 2.0]) in (0.5, 1.0, 2.0) and big.predicted(cart, 1.0) is not None


def test_unpromoted_pooled_model_serves_the_fixed_delay(tmp_path: Path) -> None:
    _model(tmp_path, 5, promoted=False)
    served = LazySendTime(tmp_path / "send_time.onnx")
    assert served.for_store(BIG).version == "fixed" and served.for_store(BIG).best_offset({}, [0.5, 1.0]) == 1.0


def test_planning_logs_the_model_each_store_was_served(
    database_url: str, tmp_path: Path, models: tuple[Path, dict[str, str]]
) -> None:
    base, versions = models
    settings = make_settings(database_url, tmp_path, model_dir=base)
    rt = build_runtime(settings, channels={"email": FakeChannel()}, seed=3)
    stores = {domain: add_store(rt, domain) for domain in (BIG, SMALL)}
    with rt.sessions.begin() as session:
        for store in session.scalars(select(t.Store)):
            store.settings = {**store.settings, "holdout_percent": 0}
        for domain, store_id in stores.items():
            for i in range(3):
                session.add(t.Cart(store_id=store_id, email=f"{domain[:3]}{i}@example.com", currency="USD",
                                   subtotal=Decimal("40"), total=Decimal("40"), line_items=[{"quantity": 1}],
                                   status="active", platform_updated_at=now(), last_activity_at=now(),
                                   abandon_at=now(), checkout_token=f"{domain[:3]}-{i}"))  # fmt: skip
    abandon_all(rt, now() + HOUR)
    with rt.sessions() as session:
        logged = {(store_id, version) for store_id, version in session.execute(
            select(t.SendDecision.store_id, t.SendDecision.model_version))}  # fmt: skip
    rt.close()
    assert logged == {(stores[BIG], versions[BIG][:64]), (stores[SMALL], versions["pooled"][:64])}
