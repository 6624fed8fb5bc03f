"""A local fake of the Shopify endpoints we call, over real HTTP, speaking their request/response shapes.

POST /admin/oauth/access_token: token exchange (session token → expiring offline token), refresh
(`grant_type=refresh_token`, each refresh token works once) and the authorization-code grant.
POST /admin/api/<version>/graphql.json: the queries and mutations we send, with
`extensions.cost.throttleStatus` on every answer; `script` queues THROTTLED / 429 / 5xx answers.
The shop is read from the Host header, as on Shopify. Every request is recorded.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import jwt
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

API_VERSION = "2026-10"


@dataclass
class Shop:
    access_tokens: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=set)
    codes: set[str] = field(default_factory=set)
    checkouts: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    discounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    webhook_topics: list[str] = field(default_factory=list)
    #: Custom domains (hosts); the first is the primary one. None: the myshopify domain is primary.
    custom_domains: list[str] = field(default_factory=list)
    #: Our web pixel record on the shop (webPixelCreate/Update): {"id", "settings" (a JSON string)}
    web_pixel: dict[str, Any] | None = None
    #: App-data metafields on our AppInstallation: (namespace, key) → value
    app_metafields: dict[tuple[str, str], str] = field(default_factory=dict)
    #: Product variants by numeric id, as `nodes(ids:)` answers them: {"title", "price", "product": {...}}
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Billing API: our app subscriptions on this shop, as AppSubscription objects (plus `returnUrl`).
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    #: `shop { email }` and `shop { plan { partnerDevelopment } }` (a development store: test charges only).
    email: str = "owner@maple-test-goods.example.com"
    partner_development: bool = False
    #: What `shop { name shopAddress { formatted } }` answers (invented, example only).
    name: str = "Maple Test Goods"
    address_lines: list[str] = field(default_factory=lambda: ["Maple Test Goods", "12 Example Road", "Sampletown ON K1A 0B1", "Canada"])
    #: The storefront's /recommendations/products.json (Ajax API): product id → its related products, each as
    #: `storefront_product` shapes them. A product not listed answers 404 "Product not found", as Shopify does.
    recommendations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Answer the storefront recommendations with this status instead (e.g. 503), or a redirect to this URL.
    recommendations_status: int | None = None
    recommendations_redirect: str | None = None


class FakeShopify:
    def __init__(self, api_key: str, api_secret: str) -> None:
        self.api_key, self.api_secret = api_key, api_secret
        self.shops: dict[str, Shop] = {}
        self.requests: list[dict[str, Any]] = []
        self.script: deque[tuple[str, Any]] = deque()  # ("throttled", None) | ("429", retry_after) | ("503", None) | ("sleep", s) | ("hold", (arrived, release))
        self.refresh_error: str | None = None
        self.exchange_error: str | None = None
        #: True: `Shop.domains` is gone from the API version (an `undefinedField` error, as Shopify answers).
        self.shop_domains_removed = False
        #: Called (once) when a refresh request arrives, before it is answered: to interleave a second refresher.
        self.on_refresh: Any = None
        self._ids = itertools.count(1000)
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> FakeShopify:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(5)

    def shop(self, domain: str) -> Shop:
        return self.shops.setdefault(domain, Shop())

    def graphql_calls(self, shop: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/graphql.json") and (shop is None or r["shop"] == shop)]

    # --- HTTP

    def _app(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        shop = request.host.split(":")[0]
        body = request.get_json(silent=True) or {}
        self.requests.append({"path": request.path, "shop": shop, "body": body, "headers": dict(request.headers)})
        if request.method == "GET" and request.path.startswith("/admin/charges/") and request.path.endswith("/confirm"):
            response = self._confirm(shop, request.path.split("/")[3], request.args.get("decline") == "1")
        elif request.method == "GET" and request.path == "/recommendations/products.json":
            response = self._recommendations(shop, request.args)
        elif request.method == "POST" and request.path == "/admin/oauth/access_token":
            response = self._token(shop, body)
        elif request.method == "POST" and request.path == f"/admin/api/{API_VERSION}/graphql.json":
            response = self._graphql(shop, request.headers.get("X-Shopify-Access-Token", ""), body)
        else:
            response = _json({"errors": "Not Found"}, 404)
        return response(environ, start_response)

    def _recommendations(self, shop: str, args: Any) -> Response:
        """The Ajax Product Recommendations API: {"intent", "products"}; errors as {"status", "message", "description"}."""
        state = self.shop(shop)
        if state.recommendations_redirect:
            return Response("", 301, headers={"Location": state.recommendations_redirect})
        if state.recommendations_status:
            return _json({"status": state.recommendations_status, "message": "Service Unavailable"}, state.recommendations_status)
        product_id, intent = args.get("product_id", ""), args.get("intent", "related")
        limit = args.get("limit", "10")
        if not product_id.isdigit() or not limit.isdigit() or not 1 <= int(limit) <= 10 or intent not in ("related", "complementary"):
            return _json({"status": 422, "message": "Invalid parameter error",
                          "description": "product_id, limit or intent is not valid"}, 422)
        if product_id not in state.recommendations:
            return _json({"status": 404, "message": "Product not found",
                          "description": f"No matching product for ID {product_id}"}, 404)
        return _json({"intent": intent, "products": state.recommendations[product_id][: int(limit)]})

    def _issue(self, shop: str) -> dict[str, Any]:
        state = self.shop(shop)
        access, refresh = f"shpat_{secrets.token_hex(16)}", f"shprt_{secrets.token_hex(16)}"
        state.access_tokens.add(access)
        state.refresh_tokens.add(refresh)
        return {
            "access_token": access,
            "scope": "read_orders,read_customers,read_products,write_discounts",
            "expires_in": 3600,
            "refresh_token": refresh,
            "refresh_token_expires_in": 7776000,
        }

    def _token(self, shop: str, body: dict[str, Any]) -> Response:
        if body.get("client_id") != self.api_key or body.get("client_secret") != self.api_secret:
            return _json({"error": "invalid_client", "error_description": "Client credentials are invalid"}, 401)
        grant = body.get("grant_type")
        state = self.shop(shop)
        if grant == "urn:ietf:params:oauth:grant-type:token-exchange" and self.exchange_error:
            return _json({"error": self.exchange_error}, 400)
        if grant == "urn:ietf:params:oauth:grant-type:token-exchange":
            if (
                body.get("subject_token_type") != "urn:ietf:params:oauth:token-type:id_token"
                or body.get("requested_token_type") != "urn:shopify:params:oauth:token-type:offline-access-token"
                or str(body.get("expiring")) != "1"
            ):
                return _json({"error": "invalid_request"}, 400)
            try:
                claims = jwt.decode(body.get("subject_token", ""), self.api_secret, algorithms=["HS256"], audience=self.api_key)
            except jwt.PyJWTError:
                return _json({"error": "invalid_subject_token"}, 400)
            if claims.get("dest") != f"https://{shop}":
                return _json({"error": "invalid_subject_token"}, 400)
            return _json(self._issue(shop))
        if grant == "refresh_token":
            hook, self.on_refresh = self.on_refresh, None
            if hook is not None:
                hook()
            token = body.get("refresh_token")
            if self.refresh_error or token not in state.refresh_tokens:
                return _json({"error": self.refresh_error or "invalid_grant"}, 400)
            state.refresh_tokens.discard(token)  # each refresh token works once
            state.access_tokens.clear()  # and the access tokens it replaced stop working
            return _json(self._issue(shop))
        if grant is None and body.get("code"):
            if body["code"] not in state.codes or str(body.get("expiring")) != "1":
                return _json({"error": "invalid_request", "error_description": "The authorization code was not found"}, 400)
            state.codes.discard(body["code"])
            return _json(self._issue(shop))
        return _json({"error": "unsupported_grant_type"}, 400)

    def _graphql(self, shop: str, token: str, body: dict[str, Any]) -> Response:
        state = self.shop(shop)
        if token not in state.access_tokens:
            return _json({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}, 401)
        if self.script and self.script[0][0] == "sleep":  # a slow answer: past a client's timeout
            time.sleep(self.script.popleft()[1])
        elif self.script and self.script[0][0] == "hold":  # answer only once the test lets go
            arrived, release = self.script.popleft()[1]
            arrived.set()
            release.wait(30)
        elif self.script:
            kind, arg = self.script.popleft()
            if kind == "throttled":
                return _json(
                    {
                        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                        "extensions": _cost(requested=10, available=2),
                    }
                )
            if kind == "429":
                return _json({"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}, 429, {"Retry-After": str(arg)})
            return _json({"errors": "Service Unavailable"}, int(kind))
        query, variables = str(body.get("query", "")), body.get("variables") or {}
        if "appSubscriptionCreate" in query:
            data = self._create_subscription(shop, state, variables)
        elif "activeSubscriptions" in query:
            active = [self._public(sub) for sub in state.subscriptions if sub["status"] == "ACTIVE"]
            data = {"shop": {"email": state.email}, "currentAppInstallation": {"activeSubscriptions": active}}
        elif "partnerDevelopment" in query:
            data = {"shop": {"plan": {"partnerDevelopment": state.partner_development}}}
        elif "discountCodeBasicCreate" in query:
            data = self._create_discount(state, variables["basicCodeDiscount"])
        elif "discountCodeDelete" in query:
            existed = state.discounts.pop(variables["id"], None)
            data = {"discountCodeDelete": {"deletedCodeDiscountId": variables["id"] if existed else None, "userErrors": []}}
        elif "codeDiscountNode(" in query:
            found = state.discounts.get(variables["id"])
            data = {"codeDiscountNode": {"id": variables["id"], "codeDiscount": {"asyncUsageCount": found["usage"]}} if found else None}
        elif "nodes(ids:" in query:
            gids = variables.get("ids") or []
            data = {"nodes": [self._variant(state, gid) for gid in gids]}
        elif "abandonedCheckouts" in query:
            data = {"abandonedCheckouts": {"nodes": state.checkouts, "pageInfo": {"hasNextPage": False, "endCursor": None}}}
        elif "orders(" in query:
            data = {"orders": {"nodes": state.orders, "pageInfo": {"hasNextPage": False, "endCursor": None}}}
        elif "webPixelCreate" in query:
            if state.web_pixel is not None:
                data = {"webPixelCreate": {"webPixel": None, "userErrors": [
                    {"field": None, "message": "Web pixel is taken.", "code": "TAKEN"}]}}
            else:
                state.web_pixel = {"id": "gid://shopify/WebPixel/7", "settings": variables["webPixel"]["settings"]}
                data = {"webPixelCreate": {"webPixel": dict(state.web_pixel), "userErrors": []}}
        elif "webPixelUpdate" in query:
            assert state.web_pixel is not None and variables["id"] == state.web_pixel["id"]
            state.web_pixel["settings"] = variables["webPixel"]["settings"]
            data = {"webPixelUpdate": {"webPixel": dict(state.web_pixel), "userErrors": []}}
        elif "webPixel {" in query:
            data = {"webPixel": dict(state.web_pixel) if state.web_pixel else None}
        elif "currentAppInstallation" in query:
            value = state.app_metafields.get(("cartresq", "track_url"))
            data = {"currentAppInstallation": {"id": "gid://shopify/AppInstallation/1001",
                                               "metafield": {"value": value} if value is not None else None}}
        elif "metafieldsSet" in query:
            for m in variables["metafields"]:
                state.app_metafields[(m["namespace"], m["key"])] = m["value"]
            data = {"metafieldsSet": {"metafields": [{"id": "gid://shopify/Metafield/1"}], "userErrors": []}}
        elif "shopAddress" in query:
            data = {"shop": {"name": state.name, "shopAddress": {"formatted": list(state.address_lines)}}}
        elif "primaryDomain" in query:
            wants_list = "domains" in query.replace("primaryDomain", "")
            if self.shop_domains_removed and wants_list:
                return _json({"errors": [{"message": "Field 'domains' doesn't exist on type 'Shop'",
                                          "extensions": {"code": "undefinedField", "typeName": "Shop", "fieldName": "domains"}}]})
            hosts = state.custom_domains + [shop]
            domain = lambda host: {"host": host, "url": f"https://{host}", "sslEnabled": True}  # noqa: E731
            data = {"shop": {"primaryDomain": domain(hosts[0])}}
            if wants_list:
                data["shop"]["domains"] = [domain(h) for h in hosts]
        elif "webhookSubscriptions" in query:
            nodes = [{"id": f"gid://shopify/WebhookSubscription/{i}", "topic": topic} for i, topic in enumerate(state.webhook_topics)]
            data = {"webhookSubscriptions": {"nodes": nodes}}
        else:
            return _json({"errors": [{"message": "Field doesn't exist on type 'QueryRoot'", "extensions": {"code": "undefinedField"}}]})
        return _json({"data": data, "extensions": _cost(requested=10, available=990)})

    # --- Billing API

    def _create_subscription(self, shop: str, state: Shop, v: dict[str, Any]) -> dict[str, Any]:
        errors = []
        items = v.get("lineItems") or []
        recurring = [((i.get("plan") or {}).get("appRecurringPricingDetails") or {}) for i in items]
        if not items or any(not r.get("price", {}).get("amount") or r.get("interval") not in ("EVERY_30_DAYS", "ANNUAL") for r in recurring):
            errors.append({"field": ["lineItems"], "message": "Line items are invalid"})
        if not str(v.get("returnUrl", "")).startswith("https://"):
            errors.append({"field": ["returnUrl"], "message": "Return url is invalid"})
        if errors:
            return {"appSubscriptionCreate": {"appSubscription": None, "confirmationUrl": None, "userErrors": errors}}
        number = next(self._ids)
        sub = {
            "id": f"gid://shopify/AppSubscription/{number}", "name": v["name"], "status": "PENDING",
            "test": bool(v.get("test")), "trialDays": int(v.get("trialDays") or 0),
            "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "currentPeriodEnd": None,
            "returnUrl": v["returnUrl"], "lineItems": items, "replacementBehavior": v.get("replacementBehavior"),
        }  # fmt: skip
        state.subscriptions.append(sub)
        url = f"{self.base}/admin/charges/{number}/confirm"
        return {"appSubscriptionCreate": {"appSubscription": {"id": sub["id"], "status": "PENDING"},
                                          "confirmationUrl": url, "userErrors": []}}

    def _confirm(self, shop: str, number: str, decline: bool) -> Response:
        """The merchant approves (or declines) on Shopify's page, then lands on the returnUrl."""
        state = self.shop(shop)
        sub = next((s for s in state.subscriptions if s["id"].endswith(f"/{number}")), None)
        if sub is None or sub["status"] != "PENDING":
            return _json({"errors": "Not Found"}, 404)
        if decline:
            sub["status"] = "DECLINED"
        else:
            for other in state.subscriptions:  # one active subscription per app installation
                if other is not sub and other["status"] == "ACTIVE":
                    other["status"] = "CANCELLED"
            sub["status"] = "ACTIVE"
            sub["currentPeriodEnd"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30 * 86400))
        return Response(status=302, headers={"Location": f"{sub['returnUrl']}?charge_id={number}"})

    def set_subscription_status(self, shop: str, sub_id: str, status: str) -> None:
        """Shopify's own changes: FROZEN (shop closed or unpaid), CANCELLED (uninstall, merchant), EXPIRED."""
        sub = next(s for s in self.shop(shop).subscriptions if s["id"] == sub_id)
        sub["status"] = status

    @staticmethod
    def _public(sub: dict[str, Any]) -> dict[str, Any]:
        return {k: sub[k] for k in ("id", "name", "status", "test", "trialDays", "createdAt", "currentPeriodEnd")}

    def subscription_webhook(self, shop: str, sub_id: str) -> dict[str, Any]:
        """The `app_subscriptions/update` payload Shopify sends for this subscription's current state."""
        sub = next(s for s in self.shop(shop).subscriptions if s["id"] == sub_id)
        price = sub["lineItems"][0]["plan"]["appRecurringPricingDetails"]["price"]["amount"]
        return {"app_subscription": {
            "admin_graphql_api_id": sub["id"], "name": sub["name"], "status": sub["status"],
            "admin_graphql_api_shop_id": "gid://shopify/Shop/548380009", "created_at": sub["createdAt"],
            "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "currency": "USD",
            "capped_amount": None, "price": f"{float(price):.2f}", "interval": "every_30_days", "plan_handle": None,
        }}  # fmt: skip

    def put_variant(self, shop: str, variant_id: str, product_title: str, price: str, *, variant_title: str = "Default Title",
                    handle: str | None = None) -> None:
        handle = handle or product_title.lower().replace(" ", "-")
        self.shop(shop).variants[str(variant_id)] = {
            "title": variant_title, "price": price,
            "product": {"id": f"gid://shopify/Product/{int(variant_id) // 7}", "title": product_title, "handle": handle,
                        "onlineStoreUrl": f"https://{shop}/products/{handle}",
                        "featuredMedia": {"preview": {"image": {"url": f"https://cdn.shopify.com/s/files/1/0001/{variant_id}.jpg"}}}},
        }

    @staticmethod
    def _variant(state: Shop, gid: str) -> dict[str, Any] | None:
        prefix = "gid://shopify/ProductVariant/"
        found = state.variants.get(gid[len(prefix):]) if gid.startswith(prefix) else None
        return {"id": gid, **found} if found else None  # Shopify answers null for an id it does not have

    def _create_discount(self, state: Shop, spec: dict[str, Any]) -> dict[str, Any]:
        if any(d["input"]["code"] == spec.get("code") for d in state.discounts.values()):
            return {"discountCodeBasicCreate": {"codeDiscountNode": None, "userErrors": [{"field": ["basicCodeDiscount", "code"], "code": "TAKEN", "message": "Code must be unique."}]}}
        gid = f"gid://shopify/DiscountCodeNode/{next(self._ids)}"
        state.discounts[gid] = {"input": spec, "usage": 0}
        return {"discountCodeBasicCreate": {"codeDiscountNode": {"id": gid}, "userErrors": []}}


def storefront_product(product_id: int, title: str, price: str, *, available: bool = True) -> dict[str, Any]:
    """One product as the Ajax API answers it (the theme's product JSON: prices in cents, relative URLs)."""
    handle = title.lower().replace(" ", "-")
    cents = int(round(float(price) * 100))
    variant_id = product_id * 10 + 1
    return {
        "id": product_id, "title": title, "handle": handle, "description": f"<p>{title}</p>",
        "published_at": "2026-06-01T09:00:00-04:00", "created_at": "2026-06-01T09:00:00-04:00",
        "vendor": "Maple Test Goods", "type": "", "tags": [], "price": cents, "price_min": cents, "price_max": cents,
        "available": available, "price_varies": False, "compare_at_price": None, "compare_at_price_min": 0,
        "compare_at_price_max": 0, "compare_at_price_varies": False,
        "variants": [{"id": variant_id, "title": "Default Title", "option1": "Default Title", "option2": None,
                      "option3": None, "sku": "", "requires_shipping": True, "taxable": True, "featured_image": None,
                      "available": available, "name": title, "public_title": None, "options": ["Default Title"],
                      "price": cents, "weight": 0, "compare_at_price": None, "inventory_management": "shopify",
                      "barcode": ""}],
        "images": [], "featured_image": None, "options": [{"name": "Title", "position": 1, "values": ["Default Title"]}],
        "url": f"/products/{handle}?pr_prod_strat=e5_desc&pr_rec_id=0f2a1b&pr_rec_pid={product_id}&pr_ref_pid=1&pr_seq=uniform",
    }  # fmt: skip


def _cost(requested: int, available: int) -> dict[str, Any]:
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": requested,
            "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": available, "restoreRate": 50.0},
        }
    }


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json", headers=headers or {})


def session_token(shop: str, api_key: str, secret: str, *, now: float | None = None, **overrides: Any) -> str:
    """An App Bridge session token as Shopify signs it (HS256 with the client secret, 1 minute)."""
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": api_key,
        "sub": "42",
        "exp": issued + 60,
        "nbf": issued,
        "iat": issued,
        "jti": secrets.token_hex(8),
        "sid": secrets.token_hex(8),
    }
    claims.update(overrides)
    return jwt.encode(claims, secret, algorithm="HS256")
