"""`cartresq demo` and `cartresq train`: port checked first, --no-serve on any port, --json, reproducible reactions."""

from __future__ import annotations

import json
import socket
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # the demo keeps var/demo and var/model under the working directory
    for name in ("DATABASE_URL", "REDIS_URL", "CARTRESQ_VAR_DIR", "CARTRESQ_MODEL_DIR"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def taken_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_taken_port_fails_at_once_before_any_training(workdir: Path, taken_port: int) -> None:
    result = CliRunner().invoke(main, ["demo", "--port", str(taken_port), "--carts", "5"])
    assert result.exit_code == 1
    assert f"port {taken_port} is not free" in result.output and "--no-serve" in result.output
    assert "Traceback" not in result.output
    assert not (workdir / "var" / "model").exists()  # checked before the model was trained


def test_no_serve_needs_no_fixed_port_and_json_is_one_document(workdir: Path, taken_port: int) -> None:
    import logging

    before = {name: logging.getLogger(name).level for name in ("recovery", "app", "werkzeug")}
    result = CliRunner().invoke(main, ["demo", "--no-serve", "--port", str(taken_port), "--carts", "12", "--json"])
    # the demo quiets the loggers while it runs, and gives them back as they were (later tests read logs)
    assert {name: logging.getLogger(name).level for name in before} == before
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stdout is the JSON alone; progress went to stderr
    assert summary["seed"] == 7 and summary["shoppers"] == 12 and summary["carts"] == 12
    assert {"abandoned", "holdout", "treated", "messages_sent", "lift_points"} <= set(summary)
    assert "simulated hours" in result.stderr and "\x1b[" not in result.stderr  # plain lines off a terminal


def test_train_reports_stages_and_json(workdir: Path) -> None:
    out = workdir / "model"
    result = CliRunner().invoke(main, ["train", "--out", str(out), "--samples", "1500", "--json"])
    assert result.exit_code == 0, result.output
    meta = json.loads(result.stdout)
    assert "roc_auc" in meta["metrics"] and (out / "send_time.onnx").exists()
    assert "train: fitting on 1500 simulated outcomes" in result.stderr and "done in" in result.stderr
    human = CliRunner().invoke(main, ["train", "--out", str(out), "--samples", "1500"])
    assert human.exit_code == 0 and human.stdout.startswith(f"wrote {out}/send_time.onnx") and "ROC AUC" in human.stdout


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def get(self, path: str) -> None:
        self.calls.append(("get", path))

    def post(self, path: str, **_kwargs: object) -> "_Recorder":
        self.calls.append(("post", path))
        return self

    def raise_for_status(self) -> None:
        pass


def test_a_shoppers_reaction_depends_on_seed_shopper_and_step_not_on_order_or_clock() -> None:
    from app.demo import SIM_START, Shop
    from ml.simulator import ShopperModel
    from recovery.config.settings import Settings

    settings = Settings(database_url="sqlite://", app_url="http://127.0.0.1:8000")
    people = [ShopperModel(7).shopper(i) for i in range(60)]
    html = "<a href='http://127.0.0.1:8000/o/x.y'></a><a href='http://127.0.0.1:8000/r/x.y'></a>"

    def reactions(order: list[int]) -> dict[tuple[int, int], list[tuple[str, str]]]:
        seen = {}
        for index in order:
            for step in (1, 2):
                shop = Shop(7, _Recorder())  # type: ignore[arg-type]
                shop.respond(people[index], step, html, settings, SIM_START + timedelta(hours=2 + 24 * (step - 1)))
                seen[(index, step)] = shop.client.calls  # type: ignore[attr-defined]
        return seen

    forward = reactions(list(range(60)))
    assert forward == reactions(list(reversed(range(60))))
    assert any(calls for calls in forward.values())  # some shoppers do react
    assert forward != {key: [] for key in forward}


def test_same_seed_prints_the_same_figures_and_a_paid_checkout_is_never_abandoned(workdir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Simulated time (issue 21 item 6): two runs of one seed agree to the message; every shopper who
    completes checkout pays before the store's idle time, so only the simulator's abandoners abandon."""
    from ml.simulator import ShopperModel

    runs = []
    for n in range(2):
        result = CliRunner().invoke(main, ["demo", "--no-serve", "--carts", "30", "--seed", "11", "--json"])
        assert result.exit_code == 0, result.output
        runs.append(json.loads(result.stdout))
        if n == 0:
            human = CliRunner().invoke(main, ["demo", "--no-serve", "--carts", "30", "--seed", "11"])
            assert "95% CI" in human.stdout and "lift (absolute)" in human.stdout  # the lift with its interval
            flow_block = human.stdout[human.stdout.index("triggered flows"):].splitlines()
            assert [line.split()[0] for line in flow_block[1:5]] == ["price_drop", "back_in_stock", "cross_sell",
                                                                      "browse_abandonment"]
            assert "a demonstration, not a measurement" in flow_block[5]
    assert runs[0] == runs[1]  # the flows' figures too
    abandoners = sum(ShopperModel(11).shopper(i).abandons for i in range(30))
    assert runs[0]["abandoned"] == abandoners and runs[0]["carts"] == 30
    assert sum(runs[0]["messages_sent"].values()) > 0
    flows = runs[0]["flows"]
    assert set(flows) == {"price_drop", "back_in_stock", "cross_sell", "browse_abandonment"}
    # the demo's price drops, fulfilments and product views (tracker beacons of known shoppers) reach shoppers,
    # who react to the flow emails
    assert flows["price_drop"]["sent"] > 0 and flows["cross_sell"]["sent"] > 0
    assert flows["browse_abandonment"]["sent"] > 0 and flows["browse_abandonment"]["lift"]["treated"] > 0
    assert sum(f["opened"] for f in flows.values()) > 0
    for flow in (f for f in flows.values() if f["sent"]):  # a flow that sent reports its lift vs its holdout
        lift = flow["lift"]
        assert lift["treated"] > 0 and lift["holdout"] >= 0 and flow["ordered"] <= flow["sent"]
        if lift["holdout"]:
            assert lift["ci_low_points"] <= lift["lift_points"] <= lift["ci_high_points"]


def test_shoppers_check_out_at_their_own_local_hours() -> None:
    from zoneinfo import ZoneInfo

    from app.demo import SIM_START
    from app.demo.shop import arrival
    from ml.simulator import ShopperModel

    people = [ShopperModel(3).shopper(i) for i in range(400)]
    local = [arrival(3, p, SIM_START).astimezone(ZoneInfo(p.timezone)).hour for p in people]
    utc = [arrival(3, p, SIM_START) for p in people]
    assert all(SIM_START <= at < SIM_START + timedelta(days=1) for at in utc)
    evening, night = sum(19 <= h <= 23 for h in local), sum(2 <= h <= 5 for h in local)
    assert evening > 4 * night  # the simulator's local-hour profile, whatever the zone
    assert len({p.timezone for p in people}) > 3 and len(set(utc)) == len(utc)
