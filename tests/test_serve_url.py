"""`cartresq serve --port P` without APP_URL: the links it sends (reset, /r/, /u/, /o/) use port P."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import app as app_package
from app.cli import main
from app.web.access import with_served_url
from recovery.config.settings import Settings


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Run `serve` up to the point it would listen; returns the runtimes it built."""
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "REDIS_URL", "CARTRESQ_VAR_DIR", "APP_URL", "CARTRESQ_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    built: list[Any] = []

    class Server:
        def serve_forever(self) -> None:
            raise KeyboardInterrupt

    def create_app(runtime: Any) -> object:
        built.append(runtime)
        return object()

    monkeypatch.setattr(app_package, "create_app", create_app)
    monkeypatch.setattr("werkzeug.serving.make_server", lambda *args, **kwargs: Server())
    return built


def test_serve_on_another_port_points_its_links_there(served: list[Any]) -> None:
    result = CliRunner().invoke(main, ["serve", "--port", "8093"])
    assert result.exit_code == 0, result.output
    [runtime] = served
    assert runtime.settings.app_url == "http://127.0.0.1:8093"
    assert runtime.sender.composer.app_url == "http://127.0.0.1:8093"  # /r/, /u/ and /o/ links in messages


def test_an_explicit_app_url_wins(served: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_URL", "https://recover.example.com/")
    assert CliRunner().invoke(main, ["serve", "--port", "8093"]).exit_code == 0
    assert served[0].settings.app_url == "https://recover.example.com"


@pytest.mark.parametrize("host, url", [("127.0.0.1", "http://127.0.0.1:8093"), ("0.0.0.0", "http://127.0.0.1:8093"),  # noqa: S104
                                       ("::1", "http://[::1]:8093"), ("localhost", "http://localhost:8093")])
def test_the_url_is_one_a_browser_can_open(host: str, url: str) -> None:
    assert with_served_url(Settings(database_url="sqlite://"), host, 8093, {}).app_url == url


def test_serving_others_without_app_url_warns_that_links_will_not_reach_shoppers(
    served: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARTRESQ_ADMIN_TOKEN", "x" * 32)  # a public bind needs the operator token
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--port", "8093"])  # noqa: S104
    assert result.exit_code == 0, result.output
    assert "APP_URL is not set" in result.stderr
    monkeypatch.setenv("APP_URL", "https://recover.example.com")
    assert "APP_URL" not in CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--port", "8093"]).stderr  # noqa: S104
    local = CliRunner().invoke(main, ["serve", "--port", "8093"])  # loopback: the links work here
    assert "APP_URL" not in local.stderr
