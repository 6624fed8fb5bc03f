"""The web pixel under Node with a stand-in for Shopify's pixel runtime (@shopify/web-pixels-extension):
standard checkout events in, POST /track beacons out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

PIXEL = Path(__file__).resolve().parents[1] / "connectors" / "shopify" / "web_pixel"
CI = os.environ.get("CI", "").lower() == "true"

RUNTIME = """
export function register(setup) { globalThis.__setup = setup; }
"""
HARNESS = """
import './index.js';
const handlers = {}, sent = [];
const consent = JSON.parse(process.argv[2]);
globalThis.__setup({
  analytics: { subscribe: (name, f) => { handlers[name] = f; } },
  browser: {
    localStorage: { getItem: async k => k === 'cartresq' ? JSON.stringify({ s: 'k3Jx0storefrontSession1' }) : null },
    sendBeacon: async (url, body) => { sent.push({ url, body: JSON.parse(body) }); return true; },
  },
  init: { data: { shop: { myshopifyDomain: 'cartresq-demo.myshopify.com' } }, customerPrivacy: consent },
  settings: { endpoint: 'https://app.example.com/track' },
  customerPrivacy: { subscribe: () => {} },
});
const checkout = {
  token: 'b1946ac92492d2347c6235b4d2611184', email: 'jane@example.com', phone: '+4930123456',
  currencyCode: 'JPY', totalPrice: { amount: 5400.0, currencyCode: 'JPY' },
  lineItems: [{ id: 'li-1', quantity: 2, title: 'Linen Shirt',
    variant: { id: '40001', sku: 'LS-M', price: { amount: 2700.0, currencyCode: 'JPY' }, product: { id: '70001' } } }],
};
for (const name of ['checkout_started', 'checkout_contact_info_submitted', 'checkout_completed', 'page_viewed']) {
  await handlers[name]?.({ id: 'e1', name, clientId: 'b7f9c0de-0000-4000-8000-000000000001', type: 'standard',
    timestamp: '2026-11-28T10:00:00.000Z', seq: 1, context: {}, data: { checkout } });
}
console.log(JSON.stringify({ subscribed: Object.keys(handlers).sort(), sent }));
"""


def run_pixel(tmp_path: Path, consent: dict[str, bool]) -> dict:
    node = shutil.which("node")
    if not node:
        if CI:
            pytest.fail("node is missing — CI=true requires it", pytrace=False)
        pytest.skip("node is missing")
    shutil.copy(PIXEL / "src" / "index.js", tmp_path / "index.js")
    runtime = tmp_path / "node_modules" / "@shopify" / "web-pixels-extension"
    runtime.mkdir(parents=True)
    (runtime / "package.json").write_text(json.dumps({"name": "@shopify/web-pixels-extension", "type": "module",
                                                      "main": "index.js"}))
    (runtime / "index.js").write_text(RUNTIME)
    (tmp_path / "package.json").write_text(json.dumps({"type": "module"}))
    (tmp_path / "harness.js").write_text(HARNESS)
    out = subprocess.run([node, "harness.js", json.dumps(consent)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


ALLOWED = {"analyticsProcessingAllowed": True, "marketingAllowed": True, "preferencesProcessingAllowed": False,
           "saleOfDataAllowed": False}


def test_checkout_events_become_contract_beacons(tmp_path: Path) -> None:
    result = run_pixel(tmp_path, ALLOWED)
    assert result["subscribed"] == ["checkout_completed", "checkout_contact_info_submitted", "checkout_started"]
    types = [s["body"]["type"] for s in result["sent"]]
    assert types == ["checkout_started", "checkout_contact", "checkout_completed"]
    body = result["sent"][1]["body"]
    assert result["sent"][1]["url"] == "https://app.example.com/track"
    assert body["v"] == 1 and body["shop"] == "cartresq-demo.myshopify.com"
    assert body["sid"] == "k3Jx0storefrontSession1"  # joins the storefront tracker's session
    assert body["checkout_token"] == "b1946ac92492d2347c6235b4d2611184" and body["page"] == "checkout"
    assert body["ts"] == 1795860000000
    assert body["cart"] == {"currency": "JPY", "total": 5400, "count": 2, "items": [
        {"variant_id": 40001, "product_id": 70001, "quantity": 2, "price": 2700, "title": "Linen Shirt", "sku": "LS-M"}]}
    assert body["contact"] == {"email": "jane@example.com", "phone": "+4930123456"}
    assert body["consent"] == {"analytics": True, "marketing": True, "preferences": False, "sale_of_data": False}


def test_no_contact_without_marketing_consent(tmp_path: Path) -> None:
    result = run_pixel(tmp_path, {**ALLOWED, "marketingAllowed": False})
    assert len(result["sent"]) == 3
    assert all("contact" not in s["body"] for s in result["sent"])


def test_extension_declares_its_privacy_needs() -> None:
    import tomllib

    config = tomllib.loads((PIXEL / "shopify.extension.toml").read_text())
    assert config["type"] == "web_pixel_extension" and config["runtime_context"] == "strict"
    assert config["customer_privacy"] == {"analytics": True, "marketing": True, "preferences": False,
                                          "sale_of_data": "disabled"}
    assert "endpoint" in config["settings"]["fields"]
