"""The real-WooCommerce suite (marker `realwoo`): opt-in with CARTRESQ_REALWOO=1 (.ci/run sets it), once per
order storage (HPOS tables and posts). With CI=true a missing prerequisite fails loudly instead of skipping."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.realwoo.store import RealWoo, missing_prerequisites

CI = os.environ.get("CI", "").lower() == "true"
ENABLED = os.environ.get("CARTRESQ_REALWOO", "").lower() in ("1", "true", "yes")
CHROMIUM = Path(os.environ.get("CARTRESQ_CHROMIUM", "/usr/bin/chromium"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/realwoo/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.realwoo)


@pytest.fixture(scope="session", params=["hpos", "posts"])
def realwoo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealWoo]:
    if not ENABLED:
        pytest.skip("real WooCommerce store: set CARTRESQ_REALWOO=1 to run (.ci/run does)")
    missing = missing_prerequisites() + ([] if CHROMIUM.exists() else [str(CHROMIUM)])
    if missing:
        message = "real WooCommerce store cannot run, missing: " + ", ".join(missing)
        if CI:
            pytest.fail(message + " (CI=true requires them; .ci/run installs them)", pytrace=False)
        pytest.skip(message)
    rw = RealWoo.create(request.param, tmp_path_factory.mktemp(f"realwoo-{request.param}"))
    try:
        rw.up()
        yield rw
    finally:
        rw.down()


@pytest.fixture(scope="session")
def connected(realwoo: RealWoo) -> tuple[RealWoo, str]:
    """The store connected by its merchant (once per storage); the page the merchant ends on."""
    return realwoo, realwoo.connect()


@pytest.fixture(scope="package")  # one sync Playwright per thread: tests/browser's is closed by now
def browser(realwoo: RealWoo) -> Iterator[object]:
    """Chromium trusting this store's TLS certificate (by its key), as a shopper's browser trusts a real one:
    no certificate error, so service workers register too."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM_ARGS

    trust = f"--ignore-certificate-errors-spki-list={realwoo.spki()}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, trust])
        yield browser
        browser.close()
