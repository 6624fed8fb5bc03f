"""A local test storefront and a fake /track collector for the browser tests and the Lighthouse run.

The storefront serves a product page whose tracker tag is rendered from the real app embed block
(theme_extension/blocks/cartresq-embed.liquid), the built assets, and Shopify's Ajax Cart API
(/cart.js, /cart/add(.js), /cart/change(.js), /cart/update(.js), /cart/clear(.js)) with Shopify's
response shapes. The collector runs on another port (another origin, as the app is on the real
storefront) and records every request, preflights included. With `app_proxy` set to the real Flask app,
`/apps/cartresq/*` is passed on to its `/proxy/*` routes signed as Shopify's app proxy signs them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, redirect, request
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "theme_extension"
SHOP = "cartresq-demo.myshopify.com"

PRODUCTS = {
    40001: {"product_id": 70001, "title": "Linen Shirt - M", "product_title": "Linen Shirt", "variant_title": "M",
            "price": 2500, "sku": "LS-M", "handle": "linen-shirt", "vendor": "Demo Co"},
    40002: {"product_id": 70002, "title": "Wool Socks", "product_title": "Wool Socks", "variant_title": None,
            "price": 1200, "sku": "", "handle": "wool-socks", "vendor": "Demo Co"},
}


def render_embed(settings: dict[str, Any] | None = None, extra_attrs: dict[str, str] | None = None,
                 product_id: str = "") -> str:
    """The app embed block's markup as Shopify renders it, from the real .liquid file.

    A tiny evaluator for exactly the Liquid the block uses; an expression it does not know fails the
    test, so the block and this renderer cannot drift apart silently.
    """
    source = (EXTENSION / "blocks" / "cartresq-embed.liquid").read_text()
    schema = json.loads(re.search(r"{% schema %}(.*?){% endschema %}", source, re.S).group(1))
    values = {s["id"]: s.get("default") for s in schema["settings"]}
    values.update(settings or {})
    locale = json.loads((EXTENSION / "locales" / "en.default.json").read_text())
    markup = re.search(r"(<script.*?</script>)", source, re.S).group(1)
    # The app proxy path the block assigns when web push is on, read from the block itself.
    push_base = re.search(
        r"if block\.settings\.web_push\s+assign cartresq_push_base = '([^']+)'\s+endif", source
    ).group(1)

    def liquid_value(value: Any) -> str:
        return ("true" if value else "false") if isinstance(value, bool) else str(value)

    def expression(match: re.Match[str]) -> str:
        expr = match.group(1).strip()
        if m := re.fullmatch(r"'([\w.-]+)' \| asset_url", expr):
            return f"/assets/{m.group(1)}"
        if m := re.fullmatch(r"'([\w.]+)' \| t \| escape", expr):
            node: Any = locale
            for part in m.group(1).split("."):
                node = node[part]
            return escape(node)
        if m := re.fullmatch(r"block\.settings\.(\w+)", expr):
            return liquid_value(values[m.group(1)])
        known = {
            "cartresq_endpoint | escape": escape(values["endpoint"]),
            "shop.permanent_domain | escape": SHOP,
            "cartresq_page": "product",
            "cartresq_product": product_id,  # the product page's product.id (empty: no view beacon)
            "cartresq_push_base": push_base if values["web_push"] else "",
        }
        if expr not in known:
            raise AssertionError(f"the test renderer does not know the Liquid expression {expr!r}")
        return known[expr]

    html = re.sub(r"{{(.*?)}}", expression, markup)
    if extra_attrs:
        attrs = "".join(f' {k}="{escape(v)}"' for k, v in extra_attrs.items())
        html = html.replace("<script", "<script" + attrs, 1)
    return html


@dataclass
class Beacon:
    method: str
    content_type: str
    origin: str
    body: dict[str, Any] | None
    raw_size: int


@dataclass
class Collector:
    """Fake POST /track following the beacon contract (DESIGN.md / notes/beacon.md)."""

    exit_popup: dict[str, Any] | None = field(default_factory=lambda: {"kind": "capture"})
    requests: list[Beacon] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Flask:
        app = Flask("collector")

        def cors(resp: Response) -> Response:
            if origin := request.headers.get("Origin"):
                resp.headers["Access-Control-Allow-Origin"] = origin
                resp.headers["Vary"] = "Origin"
            return resp

        @app.route("/track", methods=["POST", "OPTIONS"])
        def track() -> Response:
            raw = request.get_data()
            body = None
            if request.method == "POST":
                body = json.loads(raw)
            with self.lock:
                self.requests.append(Beacon(request.method, request.headers.get("Content-Type", ""),
                                            request.headers.get("Origin", ""), body, len(raw)))
            if request.method == "OPTIONS":
                resp = Response(status=204)
                resp.headers["Access-Control-Allow-Methods"] = "POST"
                resp.headers["Access-Control-Allow-Headers"] = "Content-Type"
                return cors(resp)
            if len(raw) > 8192:
                return cors(Response(json.dumps({"error": "beacon too large"}), 413, mimetype="application/json"))
            if body.get("type") == "exit":
                return cors(Response(json.dumps({"popup": self.exit_popup}), 200, mimetype="application/json"))
            return cors(Response(status=204))

        return app

    def beacons(self, type_: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [r.body for r in self.requests if r.body and (type_ is None or r.body.get("type") == type_)]


class Cart:
    """One shopper's cart with Shopify's Ajax API shapes (cart token includes ?key=, as since 2024-06)."""

    def __init__(self) -> None:
        self.token = f"c1-{secrets.token_hex(16)}?key={secrets.token_hex(16)}"
        self.lines: dict[int, int] = {}

    def line(self, variant_id: int) -> dict[str, Any]:
        p, qty = PRODUCTS[variant_id], self.lines[variant_id]
        return {
            "id": variant_id, "properties": {}, "quantity": qty, "variant_id": variant_id,
            "key": f"{variant_id}:{secrets.token_hex(8)}", "title": p["title"], "price": p["price"],
            "original_price": p["price"], "discounted_price": p["price"], "line_price": p["price"] * qty,
            "original_line_price": p["price"] * qty, "total_discount": 0, "discounts": [], "sku": p["sku"],
            "grams": 200, "vendor": p["vendor"], "taxable": True, "product_id": p["product_id"],
            "product_has_only_default_variant": p["variant_title"] is None, "gift_card": False,
            "final_price": p["price"], "final_line_price": p["price"] * qty,
            "url": f"/products/{p['handle']}?variant={variant_id}", "featured_image": None, "image": None,
            "handle": p["handle"], "requires_shipping": True, "product_type": "", "product_title": p["product_title"],
            "product_description": "", "variant_title": p["variant_title"], "variant_options": [],
            "options_with_values": [], "line_level_discount_allocations": [], "line_level_total_discount": 0,
        }

    def json(self) -> dict[str, Any]:
        items = [self.line(v) for v in self.lines]
        total = sum(i["final_line_price"] for i in items)
        return {
            "token": self.token, "note": None, "attributes": {}, "original_total_price": total,
            "total_price": total, "total_discount": 0, "total_weight": 200 * sum(self.lines.values()),
            "item_count": sum(self.lines.values()), "items": items, "requires_shipping": bool(items),
            "currency": "EUR", "items_subtotal_price": total, "cart_level_discount_applications": [],
        }


def payload() -> dict[str, Any]:
    if request.is_json:
        return request.get_json()
    return request.form.to_dict()


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Linen Shirt – Demo store</title><link rel="icon" href="data:,">
<style>body{{font:16px/1.5 sans-serif;margin:0}}header,main{{padding:1rem 2rem}}.filler{{height:{filler}px}}
img{{display:block;width:100%;max-width:480px;aspect-ratio:4/3;background:#ddd}}</style>
{head}
</head><body>
<header><a href="/">Demo store</a> · <a href="/cart">Cart</a></header>
<main>
<h1>Linen Shirt</h1>
<div role="img" aria-label="Linen shirt" class="img" style="width:100%;max-width:480px;aspect-ratio:4/3;background:#ddd"></div>
<p>A light shirt for warm days. €25.00</p>
<button id="add-fetch" type="button">Add to cart (fetch)</button>
<button id="add-xhr" type="button">Add socks (XHR)</button>
<form id="checkout-like" onsubmit="return false">
  <label for="email">Email</label> <input id="email" name="checkout[email]" type="email" autocomplete="email">
  <label for="billing_phone">Phone</label> <input id="billing_phone" name="billing_phone" type="tel">
  <label for="note">Note</label> <input id="note" name="note" type="text">
</form>
<div class="filler"></div>
</main>
<script>
document.getElementById('add-fetch').addEventListener('click', () => fetch('/cart/add.js', {{method: 'POST',
  headers: {{'Content-Type': 'application/json'}}, body: JSON.stringify({{items: [{{id: 40001, quantity: 1}}]}})}}));
document.getElementById('add-xhr').addEventListener('click', () => {{
  const x = new XMLHttpRequest(); x.open('POST', '/cart/add.js'); x.setRequestHeader('Content-Type', 'application/json');
  x.send(JSON.stringify({{id: 40002, quantity: 2}}));
}});
</script>
{tracker}
</body></html>"""


@dataclass
class Storefront:
    collector: Collector
    embed_settings: dict[str, Any] = field(default_factory=dict)
    embed_attrs: dict[str, str] = field(default_factory=dict)
    #: The product page's `product.id` as the block renders it; empty by default (no 'view' beacon).
    product_id: str = ""
    head: str = ""
    with_tracker: bool = True
    filler: int = 3000
    cart: Cart = field(default_factory=Cart)
    collector_url: str = ""
    #: The app behind Shopify's app proxy (`/apps/cartresq/*` → `/proxy/*`), and its client secret.
    app_proxy: Flask | None = None
    proxy_secret: str = ""
    #: (method, path under /apps/cartresq/, the app's status) of every proxied request.
    proxied: list[tuple[str, str, int]] = field(default_factory=list)

    def app(self) -> Flask:
        app = Flask("storefront")

        @app.get("/")
        @app.get("/products/linen-shirt")
        def product() -> str:
            tracker = ""
            if self.with_tracker:
                settings = {"endpoint": self.collector_url, **self.embed_settings}
                tracker = render_embed(settings, self.embed_attrs, self.product_id)
            return PAGE.format(head=self.head, tracker=tracker, filler=self.filler)

        @app.get("/cart")
        def cart_page() -> str:
            return "<!doctype html><title>Cart</title><h1>Your cart</h1>"

        @app.get("/assets/<name>")
        def asset(name: str) -> Response:
            path = EXTENSION / "assets" / name
            if not re.fullmatch(r"[\w.-]+\.js", name) or not path.is_file():
                abort(404)
            return Response(path.read_bytes(), mimetype="text/javascript")

        @app.get("/cart.js")
        def cart_js() -> Response:
            return Response(json.dumps(self.cart.json()), mimetype="application/json")

        def added(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
            out = []
            for item in items:
                variant = int(item["id"])
                if variant not in PRODUCTS:
                    abort(Response(json.dumps({"status": 404, "message": "Cart Error",
                                               "description": "Cannot find variant"}), 404,
                                   mimetype="application/json"))
                self.cart.lines[variant] = self.cart.lines.get(variant, 0) + int(item.get("quantity", 1))
                out.append(self.cart.line(variant))
            return out

        @app.post("/cart/add.js")
        def add_js() -> Response:
            data = payload()
            if "items" in data:
                return Response(json.dumps({"items": added(data["items"])}), mimetype="application/json")
            return Response(json.dumps(added([data])[0]), mimetype="application/json")

        @app.post("/cart/add")
        def add_form() -> Response:
            added([payload()])
            return redirect("/cart")

        def set_quantity(variant: int, qty: int) -> None:
            if qty <= 0:
                self.cart.lines.pop(variant, None)
            else:
                self.cart.lines[variant] = qty

        @app.post("/cart/change.js")
        def change() -> Response:
            data = payload()
            set_quantity(int(data["id"]), int(data["quantity"]))
            return Response(json.dumps(self.cart.json()), mimetype="application/json")

        @app.post("/cart/update.js")
        def update() -> Response:
            for variant, qty in payload().get("updates", {}).items():
                set_quantity(int(variant), int(qty))
            return Response(json.dumps(self.cart.json()), mimetype="application/json")

        @app.post("/cart/clear.js")
        def clear() -> Response:
            self.cart.lines.clear()
            return Response(json.dumps(self.cart.json()), mimetype="application/json")

        @app.route("/apps/cartresq/<path:sub>", methods=["GET", "POST"])
        def app_proxy(sub: str) -> Response:
            """Shopify's app proxy: the request goes on to the app's /proxy/<sub> with `shop`,
            `logged_in_customer_id`, `path_prefix`, `timestamp` and `signature` (hex HMAC-SHA256 of the
            sorted `key=value` pairs, no separators) added to the query; cookies are not passed on."""
            if self.app_proxy is None:
                abort(404)
            params = {**request.args.to_dict(), "shop": SHOP, "logged_in_customer_id": "",
                      "path_prefix": "/apps/cartresq", "timestamp": str(int(time.time()))}
            message = "".join(f"{k}={v}" for k, v in sorted(params.items()))
            digest = hmac.new(self.proxy_secret.encode(), message.encode(), hashlib.sha256)
            params["signature"] = digest.hexdigest()
            upstream = self.app_proxy.test_client().open(
                f"/proxy/{sub}", method=request.method, query_string=params, data=request.get_data(),
                content_type=request.content_type,
            )
            self.proxied.append((request.method, sub, upstream.status_code))
            response = Response(upstream.get_data(), upstream.status_code)
            for name in ("Content-Type", "Cache-Control"):
                if name in upstream.headers:
                    response.headers[name] = upstream.headers[name]
            return response

        return app


class Served:
    """A WSGI app on a free loopback port, in a thread."""

    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)
    return predicate()
