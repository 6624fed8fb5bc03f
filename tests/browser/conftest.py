"""Headless Debian Chromium through Playwright; skipped where Chromium is missing, unless CI=true."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.storefront import Collector, Served, Storefront

CHROMIUM = Path(os.environ.get("CARTRESQ_CHROMIUM", "/usr/bin/chromium"))
CI = os.environ.get("CI", "").lower() == "true"
# No background traffic: this machine reaches no network but package registries.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="package")  # closed before tests/realwoo starts its own Playwright (one per thread)
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install -y chromium)"
        if CI:
            pytest.fail(message + " — CI=true requires it", pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        # Device descriptors are plain dicts; kept for the mobile tests.
        browser.devices = p.devices  # type: ignore[attr-defined]
        yield browser
        browser.close()


@pytest.fixture
def collector() -> Iterator[tuple[Collector, Served]]:
    c = Collector()
    served = Served(c.app())
    yield c, served
    served.close()


@pytest.fixture
def shop(collector: tuple[Collector, Served]) -> Iterator[tuple[Storefront, Served]]:
    c, served_collector = collector
    front = Storefront(collector=c, collector_url=served_collector.url + "/track")
    served = Served(front.app())
    yield front, served
    served.close()
