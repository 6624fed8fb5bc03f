"""A local fake WooCommerce store over real HTTP, speaking the shapes of the endpoints we call.

REST (`/wp-json/wc/v3/...`, consumer key/secret by HTTP Basic or query string): system_status,
webhooks (list/create/update/delete; create sends the unsigned `webhook_id=` ping), orders
(`modified_after`, `dates_are_gmt`, paging headers), coupons (create/get/delete, codes lower-cased and
unique like wc_format_coupon_code, DELETE without force=true only trashes), and the plugin's
`cartresq/v1/settings`.
`/wc-auth/v1/authorize` is a browser page, so `grant()` / `deny()` play the store's part: POST the
keys to our callback (deleting them unless it answers exactly 200), then the return redirect.
Deliveries are signed like class-wc-webhook.php: base64 HMAC-SHA256 of `wp_json_encode()` output.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "woocommerce"
MAX_FAILURES = 5  # woocommerce_max_webhook_delivery_failures


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())  # type: ignore[no-any-return]


def wp_json_encode(payload: Any) -> bytes:
    """PHP json_encode defaults: compact, `\\/` for slashes, non-ASCII as \\uXXXX."""
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _gmt(value: datetime | None = None) -> str:
    return (value or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class FakeWooCommerce:
    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {}  # consumer_key → {"secret", "key_id", "permissions"}
        self.webhooks: dict[int, dict[str, Any]] = {}
        self.secrets: dict[int, str] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.coupons: dict[int, dict[str, Any]] = {}
        #: Products and variations by id, as GET /wc/v3/products/<id> answers them (see `put_product`).
        self.products: dict[int, dict[str, Any]] = {}
        self.plugin_settings: dict[str, Any] | None = None
        #: WooCommerce → Settings → General → Store Address (invented)
        self.store_address: dict[str, str] = {
            "woocommerce_store_address": "8 Example Gasse",
            "woocommerce_store_city": "Beispielstadt",
            "woocommerce_store_postcode": "10115",
            "woocommerce_default_country": "DE:DE-BE",  # WooCommerce 9: the state code carries the country
        }
        self.site_title = "Beispiel Laden"  # Settings › General › Site Title (invented)
        self.requests: list[tuple[str, str]] = []
        self.pings: list[tuple[str, int]] = []
        self._next_id = 100
        #: Seconds since the epoch, as PHP's strtotime('now'); a test may pin it to put deliveries in one second.
        self.clock = time.time
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FakeWooCommerce:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(5)

    # --- the merchant's browser on /wc-auth/v1/authorize ---

    def grant(self, authorize_url: str, permissions: str = "read_write") -> str:
        """Approve: make keys, POST them to callback_url, send the browser to return_url (class-wc-auth)."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        assert urlsplit(authorize_url).path == "/wc-auth/v1/authorize"
        assert set(query) == {"app_name", "scope", "user_id", "return_url", "callback_url"}
        key, secret = "ck_" + secrets.token_hex(20), "cs_" + secrets.token_hex(20)
        self._next_id += 1
        self.keys[key] = {"secret": secret, "key_id": self._next_id, "permissions": permissions}
        body = {
            "key_id": self._next_id,
            "user_id": query["user_id"],
            "consumer_key": key,
            "consumer_secret": secret,
            "key_permissions": permissions,
        }
        answer = requests.post(
            query["callback_url"],
            data=json.dumps(body),
            headers={"Content-Type": "application/json;charset=UTF-8"},
            timeout=60,
        )
        if answer.status_code != 200:
            del self.keys[key]  # "Access denied": WooCommerce revokes keys the app did not accept
            return ""
        return f"{query['return_url']}?{urlencode({'success': 1, 'user_id': query['user_id']})}"

    def deny(self, authorize_url: str) -> str:
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        return f"{query['return_url']}?{urlencode({'success': 0, 'user_id': query['user_id']})}"

    # --- webhook deliveries, as the store sends them ---

    def hook_for(self, topic: str) -> dict[str, Any]:
        [hook] = [h for h in self.webhooks.values() if h["topic"] == topic]
        return hook

    def signed(
        self, topic: str, payload: dict[str, Any], *, secret: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        hook = self.hook_for(topic)
        body = wp_json_encode(payload)
        resource, event = topic.split(".", 1)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)",
            "X-WC-Webhook-Source": self.url + "/",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": sign(body, secret or self.secrets[hook["id"]]),
            "X-WC-Webhook-ID": str(hook["id"]),
            "X-WC-Webhook-Delivery-ID": self.delivery_id(hook["id"]),
        }
        return body, headers

    def delivery_id(self, webhook_id: int) -> str:
        """As class-wc-webhook.php: `wp_hash( $this->get_id() . strtotime( 'now' ) )`, an HMAC-MD5 keyed by a
        site salt. The same for every delivery of one webhook within one second: not a unique id."""
        data = f"{webhook_id}{int(self.clock())}".encode()
        return hmac.new(b"fake-wp-auth-salt", data, hashlib.md5).hexdigest()

    def deliver(self, topic: str, payload: dict[str, Any]) -> int | None:
        """Send one delivery over HTTP unless the webhook is not active; count failures, disable after 5."""
        hook = self.hook_for(topic)
        if hook["status"] != "active":
            return None
        body, headers = self.signed(topic, payload)
        status = requests.post(
            hook["delivery_url"], data=body, headers=headers, timeout=60, allow_redirects=False
        ).status_code
        if 200 <= status <= 302:
            hook["failure_count"] = 0
        else:
            hook["failure_count"] = hook.get("failure_count", 0) + 1
            if hook["failure_count"] > MAX_FAILURES:
                hook["status"] = "disabled"
        return status

    def put_order(self, order: dict[str, Any], modified: datetime | None = None) -> dict[str, Any]:
        order = {**order, "date_modified_gmt": _gmt(modified)}
        self.orders[int(order["id"])] = order
        return order

    # --- HTTP ---

    def put_product(self, product_id: int, name: str, price: str, *, parent_id: int = 0, status: str = "publish") -> None:
        """A product (or a variation, with `parent_id`) in the shapes of the REST v3 product schema."""
        self.products[product_id] = {
            "id": product_id, "name": name, "slug": name.lower().replace(" ", "-"), "status": status,
            "type": "variation" if parent_id else "simple", "parent_id": parent_id,
            "permalink": f"{self.url}/product/{name.lower().replace(' ', '-')}/",
            "price": price, "regular_price": price, "sale_price": "",
            "images": [{"id": product_id + 1, "src": f"https://shop.example.com/wp-content/uploads/{product_id}.jpg"}],
        }

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.requests.append((request.method, request.path))
        return self._route(request)(environ, start_response)

    def _route(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/wp-json/"):
            if not self._authenticated(request):
                return _json(
                    {
                        "code": "woocommerce_rest_authentication_error",
                        "message": "Consumer key is invalid.",
                        "data": {"status": 401},
                    },
                    401,
                )
            route = path[len("/wp-json/") :].rstrip("/")
            if route == "" and request.method == "GET":  # the WordPress REST index: the site's title
                return _json({"name": self.site_title, "description": "", "url": self.url, "namespaces": ["wc/v3"]})
            if route == "wc/v3/system_status" and request.method == "GET":
                return _json(self._system_status())
            if route == "wc/v3/settings/general" and request.method == "GET":
                return _json(self._general_settings())
            if route == "wc/v3/webhooks":
                return self._webhooks(request)
            if route.startswith("wc/v3/webhooks/"):
                return self._webhook(request, int(route.rsplit("/", 1)[1]))
            if route == "wc/v3/orders" and request.method == "GET":
                return self._list_orders(request)
            if route == "wc/v3/coupons" and request.method == "POST":
                return self._create_coupon(request)
            if route.startswith("wc/v3/coupons/") and route.rsplit("/", 1)[1].isdigit():
                return self._coupon(request, int(route.rsplit("/", 1)[1]))
            if route.startswith("wc/v3/products/") and route.rsplit("/", 1)[1].isdigit() and request.method == "GET":
                found = self.products.get(int(route.rsplit("/", 1)[1]))
                if found is None:
                    return _json({"code": "woocommerce_rest_product_invalid_id", "message": "Invalid ID.",
                                  "data": {"status": 404}}, 404)
                return _json(found)
            if route == "cartresq/v1/settings" and request.method in ("PUT", "POST"):
                self.plugin_settings = request.get_json()
                return _json({"saved": True})
        return _json(
            {
                "code": "rest_no_route",
                "message": "No route was found matching the URL and request method.",
                "data": {"status": 404},
            },
            404,
        )

    def _authenticated(self, request: Request) -> bool:
        auth = request.authorization
        key, secret = (
            (auth.username, auth.password)
            if auth
            else (request.args.get("consumer_key"), request.args.get("consumer_secret"))
        )
        found = self.keys.get(key or "")
        return found is not None and hmac.compare_digest(found["secret"], secret or "")

    def _general_settings(self) -> list[dict[str, Any]]:
        """GET /wc/v3/settings/general: one object per option, as WooCommerce lists them."""
        labels = {
            "woocommerce_store_address": "Address line 1",
            "woocommerce_store_address_2": "Address line 2",
            "woocommerce_store_city": "City",
            "woocommerce_default_country": "Country / State",
            "woocommerce_store_postcode": "Postcode / ZIP",
        }
        return [
            {"id": key, "label": label, "description": "", "type": "text", "default": "", "tip": "",
             "value": self.store_address.get(key, "")}
            for key, label in labels.items()
        ]

    def _system_status(self) -> dict[str, Any]:
        return {
            "environment": {
                "home_url": self.url,
                "site_url": self.url,
                "version": "9.4.2",
                "wp_version": "6.7.1",
                "php_version": "8.2.26",
            },
            "database": {"wc_database_version": "9.4.2"},
            "active_plugins": [{"plugin": "cartresq/cartresq.php", "name": "CartResQ", "version": "0.1.0"}],
            "settings": {
                "api_enabled": True,
                "currency": "EUR",
                "currency_symbol": "€",
                "currency_position": "right_space",
                "thousand_separator": ".",
                "decimal_separator": ",",
                "number_of_decimals": 2,
            },
            "security": {"secure_connection": False, "hide_errors": True},
        }

    def _webhook_view(self, hook: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in hook.items() if k != "failure_count"}  # secret is write-only, never shown

    def _webhooks(self, request: Request) -> Response:
        if request.method == "GET":
            rows = [
                self._webhook_view(h)
                for h in self.webhooks.values()
                if request.args.get("status", "all") in ("all", h["status"])
            ]
            return _paged(rows, request)
        if request.method != "POST":
            return _json({"code": "rest_no_route", "message": "No route", "data": {"status": 404}}, 404)
        body = request.get_json()
        if body.get("topic") not in {
            f"{r}.{e}"
            for r in ("coupon", "customer", "order", "product")
            for e in ("created", "updated", "deleted", "restored")
        }:
            return _json(
                {
                    "code": "woocommerce_rest_webhook_invalid_topic",
                    "message": "Webhook topic is required and must be valid.",
                    "data": {"status": 400},
                },
                400,
            )
        self._next_id += 1
        now = _gmt()
        resource, event = body["topic"].split(".")
        hook = {
            "id": self._next_id,
            "name": body.get("name", ""),
            "status": body.get("status", "active"),
            "topic": body["topic"],
            "resource": resource,
            "event": event,
            "hooks": [f"woocommerce_{'new' if event == 'created' else 'update'}_{resource}"],
            "delivery_url": body["delivery_url"],
            "date_created": now,
            "date_created_gmt": now,
            "date_modified": now,
            "date_modified_gmt": now,
            "failure_count": 0,
            "_links": {"self": [{"href": f"{self.url}/wp-json/wc/v3/webhooks/{self._next_id}"}]},
        }
        self.webhooks[hook["id"]] = hook
        self.secrets[hook["id"]] = body.get("secret") or hashlib.md5(b"1|admin").hexdigest()  # noqa: S324  (WooCommerce's default)
        response = _json(self._webhook_view(hook), 201)
        self._ping(hook)  # sent after the 201 is built; its answer is ignored on REST creation
        return response

    def _ping(self, hook: dict[str, Any]) -> None:
        try:
            status = requests.post(
                hook["delivery_url"], data={"webhook_id": hook["id"]}, timeout=10
            ).status_code
        except requests.RequestException:
            status = 0
        self.pings.append((hook["delivery_url"], status))

    def _webhook(self, request: Request, webhook_id: int) -> Response:
        hook = self.webhooks.get(webhook_id)
        if hook is None:
            return _json(
                {
                    "code": "woocommerce_rest_webhook_invalid_id",
                    "message": "Invalid ID.",
                    "data": {"status": 404},
                },
                404,
            )
        if request.method == "DELETE":
            del self.webhooks[webhook_id]
            return _json(self._webhook_view(hook))
        if request.method in ("PUT", "POST"):
            body = request.get_json()
            for field in ("name", "status", "delivery_url"):
                if field in body:
                    hook[field] = body[field]
            if body.get("status") == "active":
                hook["failure_count"] = 0
            if "secret" in body:
                self.secrets[webhook_id] = body["secret"]
            hook["date_modified_gmt"] = _gmt()
        return _json(self._webhook_view(hook))

    def coupon_by_code(self, code: str) -> dict[str, Any]:
        [coupon] = [c for c in self.coupons.values() if c["code"] == code.lower()]
        return coupon

    def _create_coupon(self, request: Request) -> Response:
        body = request.get_json()
        code = str(body.get("code") or "").strip().lower()  # wc_format_coupon_code + wc_strtolower
        if not code:
            return _error("woocommerce_rest_empty_coupon_code", "The coupon code cannot be empty.", 400)
        if any(c["code"] == code for c in self.coupons.values()):
            return _error(
                "woocommerce_rest_coupon_code_already_exists", "The coupon code already exists", 400
            )
        if body.get("discount_type", "fixed_cart") not in ("percent", "fixed_cart", "fixed_product"):
            return _error("rest_invalid_param", "Invalid parameter(s): discount_type", 400)
        expires = body.get("date_expires")
        # set_date_prop honours an explicit offset; this store's timezone is UTC
        expires_gmt = _gmt(datetime.fromisoformat(expires)) if expires else None
        self._next_id += 1
        now = _gmt()
        coupon = {
            "id": self._next_id,
            "code": code,
            "amount": f"{float(body.get('amount') or 0):.2f}",
            "status": "publish",
            "date_created": now,
            "date_created_gmt": now,
            "date_modified": now,
            "date_modified_gmt": now,
            "discount_type": body.get("discount_type", "fixed_cart"),
            "description": body.get("description", ""),
            "date_expires": expires_gmt,
            "date_expires_gmt": expires_gmt,
            "usage_count": 0,
            "individual_use": bool(body.get("individual_use", False)),
            "product_ids": [],
            "excluded_product_ids": [],
            "usage_limit": body.get("usage_limit"),
            "usage_limit_per_user": body.get("usage_limit_per_user"),
            "limit_usage_to_x_items": None,
            "free_shipping": False,
            "product_categories": [],
            "excluded_product_categories": [],
            "exclude_sale_items": False,
            "minimum_amount": "0.00",
            "maximum_amount": "0.00",
            "email_restrictions": [str(e).lower() for e in body.get("email_restrictions") or []],
            "used_by": [],
            "meta_data": [],
            "_links": {
                "self": [{"href": f"{self.url}/wp-json/wc/v3/coupons/{self._next_id}"}],
                "collection": [{"href": f"{self.url}/wp-json/wc/v3/coupons"}],
            },
        }
        self.coupons[coupon["id"]] = coupon
        return _json(_coupon_view(coupon), 201)

    def _coupon(self, request: Request, coupon_id: int) -> Response:
        coupon = self.coupons.get(coupon_id)
        if coupon is None:
            return _error("woocommerce_rest_shop_coupon_invalid_id", "Invalid ID.", 404)
        if request.method == "DELETE":
            if request.args.get("force") == "true":
                del self.coupons[coupon_id]
            else:
                coupon["status"] = "trash"  # trashed, and its code stays taken
            return _json(_coupon_view(coupon))
        return _json(_coupon_view(coupon))

    def _list_orders(self, request: Request) -> Response:
        rows = list(self.orders.values())
        after = request.args.get("modified_after")
        if after:
            # dates_are_gmt=true: the filter compares with date_modified_gmt
            assert request.args.get("dates_are_gmt") == "true"
            rows = [o for o in rows if o["date_modified_gmt"] > after]
        if request.args.get("orderby") == "modified":
            rows.sort(key=lambda o: o["date_modified_gmt"], reverse=request.args.get("order") == "desc")
        return _paged(rows, request)


def _coupon_view(coupon: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in coupon.items() if k != "status"}


def _error(code: str, message: str, status: int) -> Response:
    return _json({"code": code, "message": message, "data": {"status": status}}, status)


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(payload), status=status, headers=headers, mimetype="application/json")


def _paged(rows: list[dict[str, Any]], request: Request) -> Response:
    per_page = int(request.args.get("per_page", 10))
    page = int(request.args.get("page", 1))
    pages = max(1, -(-len(rows) // per_page))
    chunk = rows[(page - 1) * per_page : page * per_page]
    return _json(chunk, headers={"X-WP-Total": str(len(rows)), "X-WP-TotalPages": str(pages)})


@contextmanager
def running() -> Iterator[FakeWooCommerce]:
    store = FakeWooCommerce().start()
    try:
        yield store
    finally:
        store.stop()


class LiveApp:
    """Our Flask app on a real port, so the fake store can call it back (key POST, ping, deliveries)."""

    def __init__(self) -> None:
        self.app: Any = None
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.app(environ, start_response)

    def start(self, app: Any) -> None:
        self.app = app
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(5)


def activate(app_url: str, store: FakeWooCommerce) -> requests.Response:
    """The merchant's whole activation: our start URL → the store's grant → our return page."""
    start = requests.get(
        f"{app_url}/auth/woocommerce", params={"store_url": store.url}, allow_redirects=False, timeout=30
    )
    assert start.status_code == 302, start.text
    back = store.grant(start.headers["Location"])
    assert back, "our callback did not answer 200"
    return requests.get(back, timeout=60)
