"""`cartresq demo` and `cartresq train`: port checked first, --no-serve on any port, --json, reproducible reactions."""

from __future__ import annotations

import json
import socket
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
    assert "shoppers checking out" in result.stderr and "\x1b[" not in result.stderr  # plain lines off a terminal


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
    from app.demo import Shop
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
                shop.respond(people[index], step, html, settings)
                seen[(index, step)] = shop.client.calls  # type: ignore[attr-defined]
        return seen

    forward = reactions(list(range(60)))
    assert forward == reactions(list(reversed(range(60))))
    assert any(calls for calls in forward.values())  # some shoppers do react
    assert forward != {key: [] for key in forward}
