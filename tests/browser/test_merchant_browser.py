"""The merchant app in Debian's Chromium (standalone door): sign in, complete the setup guide, edit the flow,
preview and send a test, on a desktop window and at 390 px; axe-core on every page; screenshots kept.

One server for the module. Screenshots: `var/artifacts/merchant/` (gitignored; CARTRESQ_ARTIFACTS moves it).
axe-core comes from the npm registry (.ci/node: `npm ci`); CARTRESQ_AXE names another copy of axe.min.js.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import create_app
from app.runtime import build_runtime
from recovery.storage import tables as t
from recovery.storage.tables import utcnow
from tests.browser.storefront import Served
from tests.conftest import make_settings
from tests.merchant_helpers import PASSWORD, make_account, outbox_emails

ROOT = Path(__file__).resolve().parents[2]
AXE = Path(os.environ.get("CARTRESQ_AXE", ROOT / ".ci/node/node_modules/axe-core/axe.min.js"))
SHOTS = Path(os.environ.get("CARTRESQ_ARTIFACTS", ROOT / "var/artifacts")) / "merchant"
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
#: axe results of this run, page → violations by impact (printed in the report header of the summary test)
AXE_RESULTS: dict[str, list[dict[str, Any]]] = {}


@dataclasses.dataclass
class Merchant:
    url: str
    rt: Any
    stores: dict[str, int]
    #: each viewport's signed-in browser state (cookies), from the sign-in test to the next ones
    signed_in: dict[str, Any] = dataclasses.field(default_factory=dict)


@pytest.fixture(scope="module")
def merchant(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Merchant]:
    folder = tmp_path_factory.mktemp("merchant-app")
    shutil.copy(sqlite_template, folder / "cartresq.db")
    rt = build_runtime(make_settings(f"sqlite:///{folder / 'cartresq.db'}", folder))
    stores = {}
    for name in VIEWPORTS:
        with rt.sessions.begin() as db:
            store = t.Store(platform="shopify", domain=f"{name}-loom.myshopify.com", name=f"{name.title()} Loom",
                            settings={}, timezone="Europe/Berlin", currency="EUR", plan="free")
            db.add(store)
            db.flush()
            stores[name] = store.id
        make_account(rt, f"{name}@example.com", stores[name])
    served = Served(create_app(runtime=rt))
    yield Merchant(served.url.replace("127.0.0.1", "localhost"), rt, stores)  # a secure context for Secure cookies
    served.close()
    rt.close()


def _axe(page: Any, label: str) -> list[dict[str, Any]]:
    if not AXE.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{AXE} is missing (cd .ci/node && npm ci)", pytrace=False)
        pytest.skip(f"{AXE} is missing (cd .ci/node && npm ci)")
    page.evaluate(AXE.read_text())  # evaluated through the protocol: the page's CSP does not apply
    found = page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']})).violations
        .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length}))""")
    AXE_RESULTS[label] = found
    return [v for v in found if v["impact"] in ("serious", "critical")]


def _submit(page: Any, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def _check(page: Any, viewport: str, name: str) -> None:
    """No horizontal overflow at this width, no serious or critical axe violation, a screenshot kept."""
    width = VIEWPORTS[viewport]["width"]
    overflow = page.evaluate("() => document.documentElement.scrollWidth")
    assert overflow <= width, f"{name} is {overflow} px wide at {width} px"
    bad = _axe(page, f"{viewport}:{name}")
    assert not bad, f"axe on {name} ({viewport}): {bad}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{viewport}-{name}.png"), full_page=True)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_sign_in_and_complete_the_setup_guide(browser: Any, merchant: Merchant, viewport: str) -> None:
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    page = context.new_page()
    page.goto(merchant.url + "/app/setup")
    assert "/app/sign-in" in page.url
    _check(page, viewport, "sign-in")
    page.fill("#email", f"{viewport}@example.com")
    page.fill("#password", PASSWORD)
    _submit(page, "button:has-text('Sign in')")
    page.wait_for_url("**/app/setup")
    assert "0 of 6 steps done" in page.content()
    page.fill("#postal_address", "1 Example Street, 10115 Berlin")
    _submit(page, "button:has-text('Save address')")
    page.fill("#sender_name", f"{viewport.title()} Loom")
    page.fill("#reply_to", "help@shop")  # the browser accepts it; our check does not
    _submit(page, "button:has-text('Save sender')")
    assert page.locator("#err-reply_to").is_visible()  # inline, next to its field
    page.fill("#reply_to", f"help-{viewport}@example.com")
    _submit(page, "button:has-text('Save sender')")
    page.check("input[name=sms_enabled]")
    _submit(page, "button:has-text('Save channels')")
    page.check("input[value=regional]")
    _submit(page, "button:has-text('Save consent policy')")
    with merchant.rt.sessions.begin() as db:  # the storefront tracker reports
        db.add(t.TrackEvent(store_id=merchant.stores[viewport], sid=f"s-{viewport}", type="exit_intent", at=utcnow()))
    _submit(page, "button:has-text('Send me a test')")
    page.wait_for_selector("text=Test sent.")
    done = page.inner_text("p:has-text('steps done')")
    assert "6 of 6 steps done" in done, page.inner_text("ol.cq-steps")
    assert any(m["To"] == f"{viewport}@example.com" for m in outbox_emails(merchant.rt))
    _check(page, viewport, "setup")
    page.goto(merchant.url + "/app/")
    assert "Setup complete" in page.content()
    _check(page, viewport, "overview")
    page.goto(merchant.url + "/app/status")
    _check(page, viewport, "status")
    merchant.signed_in[viewport] = context.storage_state()
    context.close()


def _signed_in(browser: Any, merchant: Merchant, viewport: str) -> Any:
    """A signed-in browser: the sign-in test's cookies, or a sign-in through the form when run alone."""
    if viewport in merchant.signed_in:
        return browser.new_context(viewport=VIEWPORTS[viewport], storage_state=merchant.signed_in[viewport])
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    page = context.new_page()
    page.goto(merchant.url + "/app/sign-in")
    page.fill("#email", f"{viewport}@example.com")
    page.fill("#password", PASSWORD)
    _submit(page, "button:has-text('Sign in')")
    page.close()
    return context


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_edit_the_flow(browser: Any, merchant: Merchant, viewport: str) -> None:
    context = _signed_in(browser, merchant, viewport)
    page = context.new_page()
    page.goto(merchant.url + "/app/flow")
    _check(page, viewport, "flow")
    page.fill("#s2-delay", "12 h")
    page.uncheck("input[name=step-3-on]")
    page.fill("#f-offer_percent", "10")
    page.fill("#f-sms_window", "07:00-22:00")
    _submit(page, "#save-flow")
    assert page.locator("#err-sms_window").is_visible()  # wider than the law: refused, nothing saved
    page.fill("#f-sms_window", "09:00-20:00")
    page.check("input[name=cross_sell]")
    page.fill("#f-cross_sell_after", "3 d")
    _submit(page, "#save-flow")
    page.wait_for_selector("text=Saved.")
    assert page.is_checked("input[name=cross_sell]") and page.input_value("#f-cross_sell_after") == "3 d"
    assert page.input_value("#s2-delay") == "12 h" and not page.is_checked("input[name=step-3-on]")
    _submit(page, "button:has-text('Remove step 4')")
    assert page.locator("#confirm-remove").is_visible() and page.locator("#s4-delay").count() == 1  # asked first
    _check(page, viewport, "flow-confirm-remove")
    _submit(page, "button:has-text('Yes, remove step 4 and save')")
    page.wait_for_selector("text=Saved.")
    assert page.locator("#s4-delay").count() == 0
    _check(page, viewport, "flow-saved")
    context.close()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_change_a_store_setting(browser: Any, merchant: Merchant, viewport: str) -> None:
    context = _signed_in(browser, merchant, viewport)
    page = context.new_page()
    page.goto(merchant.url + "/app/settings")
    _check(page, viewport, "settings")
    page.fill("#f-abandon_after", "10")
    page.fill("#f-country", "Germany")
    _submit(page, "#save-settings")
    assert page.locator("#err-abandon_after").is_visible() and page.locator("#err-country").is_visible()
    _check(page, viewport, "settings-errors")
    page.fill("#f-abandon_after", "2 h")
    page.fill("#f-country", "DE")
    _submit(page, "#save-settings")
    page.wait_for_selector("text=Saved.")
    assert page.input_value("#f-abandon_after") == "2 h" and page.input_value("#f-country") == "DE"
    context.close()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_preview_a_template_live_and_send_a_test(browser: Any, merchant: Merchant, viewport: str) -> None:
    with merchant.rt.sessions.begin() as db:  # the offer as the Flow page sets it (and its test does)
        store = db.get(t.Store, merchant.stores[viewport])
        store.settings = {**(store.settings or {}), "offer_percent": 10}
    context = _signed_in(browser, merchant, viewport)
    page = context.new_page()
    page.goto(merchant.url + "/app/templates?template=offer&language=en")
    assert "10% off" in page.inner_text("#offer-note")  # the offer percent set on the Flow page
    page.fill("#copy-subject", "{percent}% off your cart at {store}")
    page.wait_for_function("() => document.getElementById('preview-subject').textContent.startsWith('10% off your')")
    frame = page.frame_locator("#preview-frame")
    assert frame.locator("text=PREVIEW-CODE").count() >= 1
    _check(page, viewport, "templates")
    _submit(page, "button:has-text('Send me a test')")
    page.wait_for_selector("text=Test sent to")
    subjects = [m["Subject"] for m in outbox_emails(merchant.rt) if m["To"] == f"{viewport}@example.com"]
    assert f"[Test] 10% off your cart at {viewport.title()} Loom" in subjects
    _submit(page, "button:has-text('Save words')")
    page.wait_for_selector("text=Saved.")
    context.close()


def test_axe_summary_is_written() -> None:
    """The axe results of this run, kept next to the screenshots (page → violations of any impact)."""
    if not AXE_RESULTS:
        pytest.skip("no page was checked")
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "axe.json").write_text(json.dumps(AXE_RESULTS, indent=2, sort_keys=True))
    assert not [(page, v) for page, found in AXE_RESULTS.items() for v in found
                if v["impact"] in ("serious", "critical")]
