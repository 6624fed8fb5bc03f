"""Activate our web pixel extension (connectors/shopify/web_pixel) on a shop, pointed at our `/track`.

Shopify keeps one pixel record per app and shop: `webPixelCreate` the first time; when it answers
`TAKEN`, the record exists and `webPixelUpdate` sets its settings. Settings must match the
extension's `[settings]` schema (an `endpoint` string), or Shopify refuses them.
"""

from __future__ import annotations

import json

from connectors.shopify.admin import AdminClient, AdminError

CREATE = """mutation ActivatePixel($webPixel: WebPixelInput!) {
  webPixelCreate(webPixel: $webPixel) { webPixel { id settings } userErrors { field message code } }
}"""
CURRENT = "query CurrentPixel { webPixel { id settings } }"
UPDATE = """mutation UpdatePixel($id: ID!, $webPixel: WebPixelInput!) {
  webPixelUpdate(id: $id, webPixel: $webPixel) { webPixel { id settings } userErrors { field message code } }
}"""


def activate(admin: AdminClient, shop: str, track_url: str) -> str:
    """'created', 'updated' or 'unchanged'; raises AdminError when Shopify refuses."""
    wanted = {"endpoint": track_url}
    pixel = {"settings": json.dumps(wanted)}
    result = admin.execute(shop, CREATE, {"webPixel": pixel}).get("webPixelCreate") or {}
    errors = result.get("userErrors") or []
    if not errors:
        return "created"
    if not any(e.get("code") == "TAKEN" for e in errors):
        raise AdminError(f"webPixelCreate: {errors[0].get('message')}", permanent=True, code="user_errors")
    current = admin.execute(shop, CURRENT).get("webPixel") or {}
    if _settings(current.get("settings")) == wanted:
        return "unchanged"
    result = admin.execute(shop, UPDATE, {"id": current["id"], "webPixel": pixel}).get("webPixelUpdate") or {}
    if result.get("userErrors"):
        raise AdminError(f"webPixelUpdate: {result['userErrors'][0].get('message')}", permanent=True, code="user_errors")
    return "updated"


def _settings(raw: object) -> object:
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
