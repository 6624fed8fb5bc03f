"""The Performance and Carts pages in Debian's Chromium: the funnel read at desktop width and at 390 px,
no horizontal scrolling of the page, and axe-core finding no serious or critical violation.

Screenshots go to CARTRESQ_ARTIFACTS (default var/artifacts/) as merchant-<page>-<width>.png.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from datetime import timedelta
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import create_app
from app.runtime import Runtime, build_runtime
from tests.browser.storefront import Served
from tests.conftest import ADMIN_TOKEN, add_store, make_settings
from tests.test_merchant_insights import NOW, SHOP_A, STEPS, range_args, seed, seed_price_drops

ROOT = Path(__file__).resolve().parents[2]
AXE = Path(os.environ.get("CARTRESQ_AXE") or ROOT / ".ci" / "node" / "node_modules" / "axe-core" / "axe.min.js")
ARTIFACTS = Path(os.environ.get("CARTRESQ_ARTIFACTS") or ROOT / "var" / "artifacts")
WIDTHS = {"desktop": (1280, 900), "390px": (390, 844)}


@pytest.fixture
def served(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[str, list[dict]]]:  # type: ignore[type-arg]
    settings = dataclasses.replace(make_settings(sqlite_url, tmp_path), admin_token=ADMIN_TOKEN)
    rt: Runtime = build_runtime(settings)
    store_id = add_store(rt, SHOP_A)
    rows = seed(rt, store_id, 40, random.Random(11), "eve")
    seed_price_drops(rt, store_id, "pd", NOW - timedelta(days=3))  # the flows' table holds a line with a lift
    server = Served(create_app(runtime=dataclasses.replace(rt, shopify=None)))
    yield server.url, rows
    server.close()
    rt.close()


def axe_violations(page) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "nodes": len(v["nodes"])} for v in result["violations"]]


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_funnel_reads_right_on_desktop_and_phone_with_no_serious_axe_violation(browser, served, width: str) -> None:  # type: ignore[no-untyped-def]
    if not AXE.exists():
        pytest.skip(f"{AXE} is missing (cd .ci/node && npm ci)")
    url, rows = served
    w, h = WIDTHS[width]
    context = browser.new_context(viewport={"width": w, "height": h}, bypass_csp=True,  # axe is injected
                                  extra_http_headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    page = context.new_page()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    found: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    try:
        page.goto(f"{url}/app/performance?store={SHOP_A}&{range_args()}")
        for step, channel in STEPS:
            cell = page.locator(f'#funnel tr[data-step="{step}"][data-channel="{channel}"] td[data-stage="sent"]')
            expected = sum(1 for r in rows for m in r["messages"] if (m[0], m[1]) == (step, channel) and m[2])
            assert cell.inner_text().split()[0] == str(expected)
        assert page.locator("#abandoned").inner_text() == str(len(rows) + 7)  # + the price drop's 7 carts
        assert page.locator('#flows tr[data-flow="price_drop"] td[data-stage="sent"]').inner_text() == "4"
        assert page.locator("svg.chart").count() == 2 and page.locator("svg.chart").first.is_visible()
        pages = {"performance": page.url, "carts": f"{url}/app/carts?store={SHOP_A}",
                 "cart": f"{url}/app/carts/{rows[0]['id']}?store={SHOP_A}"}  # fmt: skip
        for name, address in pages.items():
            page.goto(address)
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{name} scrolls sideways by {overflow} px at {width}"
            page.screenshot(path=str(ARTIFACTS / f"merchant-{name}-{width}.png"), full_page=True)
            found[name] = axe_violations(page)
    finally:
        context.close()
    (ARTIFACTS / f"merchant-insights-axe-{width}.json").write_text(json.dumps(found, indent=2))
    serious = {name: [v for v in vs if v["impact"] in ("serious", "critical")] for name, vs in found.items()}
    assert serious == {name: [] for name in pages}, serious
