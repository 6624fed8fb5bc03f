"""A local fake of the Stripe API calls we make, over real HTTP, with Stripe's payload shapes (API 2026-02-25).

POST /v1/checkout/sessions and /v1/billing_portal/sessions (form-encoded, as the `stripe` library sends them);
`complete_checkout`, `change_price`, `cancel` and `fail_payment` play what Stripe does afterwards and return
the webhook event, which `signed` turns into (body, headers) exactly as Stripe signs them.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

API_VERSION = "2026-02-25.clover"


class FakeStripe:
    def __init__(self, secret_key: str, webhook_secret: str, prices: dict[str, int]) -> None:
        self.secret_key, self.webhook_secret = secret_key, webhook_secret
        self.prices = prices  # price id → unit amount in cents
        self.requests: list[dict[str, Any]] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        #: What GET /v1/customers/<id> answers as the customer's email (the merchant who paid).
        self.customer_email = "owner@harbor-goods.example.com"
        self._ids = itertools.count(1)
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> FakeStripe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(5)

    def _id(self, prefix: str) -> str:
        return f"{prefix}_test{next(self._ids):06d}"

    # --- HTTP

    def _app(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        form = request.form.to_dict()
        self.requests.append({"path": request.path, "form": form, "auth": request.headers.get("Authorization", "")})
        if request.headers.get("Authorization") != f"Bearer {self.secret_key}":
            response = _json({"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}, 401)
        elif request.method == "POST" and request.path == "/v1/checkout/sessions":
            response = self._checkout(form)
        elif request.method == "GET" and request.path.startswith("/v1/customers/"):
            cid = request.path.rsplit("/", 1)[1]
            response = _json({"id": cid, "object": "customer", "email": self.customer_email, "livemode": False,
                              "metadata": {}, "name": None, "delinquent": False})
        elif request.method == "POST" and request.path == "/v1/billing_portal/sessions":
            if not form.get("customer", "").startswith("cus_"):
                response = _json({"error": {"type": "invalid_request_error", "message": "No such customer", "param": "customer"}}, 400)
            else:
                sid = self._id("bps")
                response = _json({"id": sid, "object": "billing_portal.session", "customer": form["customer"],
                                  "livemode": False, "return_url": form.get("return_url"),
                                  "url": f"https://billing.stripe.com/p/session/{sid}"})
        else:
            response = _json({"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}}, 404)
        return response(environ, start_response)

    def _checkout(self, form: dict[str, str]) -> Response:
        price = form.get("line_items[0][price]")
        if form.get("mode") != "subscription" or price not in self.prices:
            return _json({"error": {"type": "invalid_request_error", "message": "No such price", "param": "line_items[0][price]"}}, 400)
        sid = self._id("cs")
        session = {
            "id": sid, "object": "checkout.session", "mode": "subscription", "status": "open",
            "client_reference_id": form.get("client_reference_id"), "customer": form.get("customer"),
            "success_url": form.get("success_url"), "cancel_url": form.get("cancel_url"),
            "metadata": {k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[")},
            "url": f"https://checkout.stripe.com/c/pay/{sid}", "livemode": False, "_form": form,
        }  # fmt: skip
        self.sessions[sid] = session
        return _json({k: v for k, v in session.items() if not k.startswith("_")})

    # --- what Stripe does after the merchant pays, changes or stops paying

    def complete_checkout(self, session_id: str) -> dict[str, Any]:
        """The merchant paid on Checkout: a customer and a trialing subscription; customer.subscription.created."""
        session = self.sessions[session_id]
        form = session["_form"]
        now = int(time.time())
        trial_days = int(form.get("subscription_data[trial_period_days]") or 0)
        metadata = {k[len("subscription_data[metadata]["):-1]: v for k, v in form.items()
                    if k.startswith("subscription_data[metadata][")}
        sub_id = self._id("sub")
        period_end = now + (trial_days * 86400 if trial_days else 30 * 86400)
        sub = {
            "id": sub_id, "object": "subscription", "customer": session["customer"] or self._id("cus"),
            "status": "trialing" if trial_days else "active", "created": now, "currency": "usd",
            "trial_start": now if trial_days else None, "trial_end": period_end if trial_days else None,
            "cancel_at_period_end": False, "canceled_at": None, "ended_at": None, "livemode": False,
            "metadata": metadata, "billing_cycle_anchor": period_end,
            "items": {"object": "list", "has_more": False, "url": f"/v1/subscription_items?subscription={sub_id}",
                      "data": [self._item(sub_id, form["line_items[0][price]"], now, period_end)]},
        }  # fmt: skip
        self.subscriptions[sub_id] = sub
        session.update(status="complete", customer=sub["customer"], subscription=sub_id)
        return self._event("customer.subscription.created", sub)

    def _item(self, sub_id: str, price: str, start: int, end: int) -> dict[str, Any]:
        return {
            "id": self._id("si"), "object": "subscription_item", "subscription": sub_id, "quantity": 1,
            "current_period_start": start, "current_period_end": end, "metadata": {},
            "price": {"id": price, "object": "price", "active": True, "currency": "usd", "lookup_key": None,
                      "product": "prod_cartresq", "type": "recurring", "unit_amount": self.prices[price],
                      "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"}},
        }  # fmt: skip

    def change_price(self, sub_id: str, price: str) -> dict[str, Any]:
        """An upgrade or downgrade in the customer portal: same billing cycle, new price."""
        sub = self.subscriptions[sub_id]
        item = sub["items"]["data"][0]
        previous = {"items": json.loads(json.dumps(sub["items"]))}
        sub["items"]["data"][0] = self._item(sub_id, price, item["current_period_start"], item["current_period_end"])
        return self._event("customer.subscription.updated", sub, previous)

    def fail_payment(self, sub_id: str) -> list[dict[str, Any]]:
        """A renewal charge failed: invoice.payment_failed, and the subscription goes past_due."""
        sub = self.subscriptions[sub_id]
        invoice = {
            "id": self._id("in"), "object": "invoice", "customer": sub["customer"], "status": "open",
            "billing_reason": "subscription_cycle", "attempt_count": 1, "amount_due": 7900, "currency": "usd",
            "parent": {"type": "subscription_details", "quote_details": None,
                       "subscription_details": {"subscription": sub_id, "metadata": dict(sub["metadata"])}},
            "lines": {"object": "list", "has_more": False, "data": []},
        }  # fmt: skip
        sub["status"] = "past_due"
        return [self._event("invoice.payment_failed", invoice), self._event("customer.subscription.updated", sub,
                                                                              {"status": "active"})]

    def cancel(self, sub_id: str) -> dict[str, Any]:
        sub = self.subscriptions[sub_id]
        sub.update(status="canceled", canceled_at=int(time.time()), ended_at=int(time.time()))
        return self._event("customer.subscription.deleted", sub)

    def _event(self, kind: str, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"object": json.loads(json.dumps(obj))}
        if previous is not None:
            data["previous_attributes"] = previous
        return {
            "id": self._id("evt"), "object": "event", "api_version": API_VERSION, "created": int(time.time()),
            "data": data, "livemode": False, "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None}, "type": kind,
        }

    def signed(self, event: dict[str, Any], secret: str | None = None) -> tuple[bytes, dict[str, str]]:
        """Stripe's signature: `Stripe-Signature: t=<unix time>,v1=<HMAC-SHA256 of "<t>.<body>">`."""
        body = json.dumps(event).encode()
        stamp = str(int(time.time()))
        mac = hmac.new((secret or self.webhook_secret).encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return body, {"Content-Type": "application/json", "Stripe-Signature": f"t={stamp},v1={mac}"}


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status, mimetype="application/json", headers={"Request-Id": "req_fake"})
