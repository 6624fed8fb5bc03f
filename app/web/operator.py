"""Operator routes: a store's status page (dead letters, with a retry button) and the bearer check that
guards them and /metrics.

`require_operator` guards them with app.web.access's operator check (CARTRESQ_ADMIN_TOKEN as bearer or basic
auth; the page's retry form posts the token as a field). Without a token configured they answer 401.

A browser attaches cached basic credentials to any site's form posting here, so a state-changing request whose
Origin (or, without one, Referer) names another site is refused (403) whatever it carries. API clients send
neither header and keep working; the page's own form sends this site's origin.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import Any

from urllib.parse import urlsplit

from flask import Blueprint, abort, jsonify, redirect, render_template_string, request
from sqlalchemy import func, select

from recovery.intake import deadletters
from recovery.storage import tables as t

bp = Blueprint("operator", __name__)


def operator_allowed() -> bool:
    """The operator token (app.web.access: bearer, or basic auth's password), or, for the status page's own
    retry form, the token as a POST field (which also keeps other sites' forms from posting here)."""
    from app.web import runtime
    from app.web.access import is_operator

    settings = runtime().settings
    if is_operator(settings):
        return True
    given, token = request.form.get("admin_token", "") if request.method == "POST" else "", settings.admin_token
    return bool(given and token) and hmac.compare_digest(given.encode(), token.encode())


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def cross_site() -> bool:
    """Whether the request comes from another site's page: its Origin, or else its Referer, names a host other
    than this one (the request's Host, or APP_URL's behind a proxy); "null", an opaque origin, counts as another
    site. Neither header: not a browser form."""
    from app.web import runtime

    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source:
        return False
    ours = {request.host.lower(), urlsplit(runtime().settings.app_url or "").netloc.lower()} - {""}
    return source == "null" or urlsplit(source).netloc.lower() not in ours


def require_operator(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from app.web.access import unauthorized

        if request.method not in SAFE_METHODS and cross_site():
            abort(403, "a request from another site cannot change anything here")
        return view(*args, **kwargs) if operator_allowed() else unauthorized()

    return wrapper


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{ shop }} · status</title></head>
<body><h1>{{ shop }}</h1>
<p>Deliveries waiting for a worker: {{ pending }} · applied: {{ applied }} · dead letters: {{ letters|length }}</p>
<h2>Dead letters</h2>
{% if not letters %}<p>None.</p>{% else %}
<table><thead><tr><th>id</th><th>topic</th><th>received</th><th>attempts</th><th>state</th><th>error</th><th></th></tr></thead>
<tbody>{% for d in letters %}<tr><td>{{ d.id }}</td><td>{{ d.topic }}</td><td>{{ d.received_at }}</td>
<td>{{ d.attempts }}</td><td>{{ "failed" if d.failed_at else d.outcome }}</td><td>{{ d.error }}</td>
<td>{% if d.payload is not none %}<form method="post" action="{{ url_for('operator.retry', shop=shop, delivery_id=d.id) }}">
{% if token %}<input type="hidden" name="admin_token" value="{{ token }}">{% endif %}
<button type="submit">Retry</button></form>{% endif %}</td></tr>{% endfor %}</tbody></table>{% endif %}
</body></html>"""


@bp.get("/operator")
def sign_in() -> Any:
    """The operator's door for a browser: a basic-auth challenge (any user name, the token as the password), then
    the merchant app. At the root path, so the browser sends the credentials with every request to this site
    afterwards (RFC 7617: the challenged path's directory and below); the merchant app's sign-in form is for
    merchant accounts only."""
    from app.web import runtime
    from app.web.access import is_operator, unauthorized

    if not runtime().settings.admin_token:
        abort(404, "no operator token is set on this installation (CARTRESQ_ADMIN_TOKEN)")
    if not is_operator(runtime().settings):
        return unauthorized("sign in with any user name and the operator token (CARTRESQ_ADMIN_TOKEN) as the password")
    return redirect("/app/", 303)


def _store(session: Any, shop: str) -> t.Store | None:
    return session.scalar(select(t.Store).where(t.Store.domain == shop.strip().lower()[:255]))


@bp.get("/ops/stores/<shop>")
@require_operator
def status(shop: str) -> Any:
    from app.web import runtime

    with runtime().sessions() as session:
        store = _store(session, shop)
        if store is None:
            return jsonify(error="Not Found", detail="unknown store"), 404
        d = t.WebhookDelivery
        pending = session.scalar(select(func.count()).where(d.store_id == store.id, d.processed_at.is_(None)))
        applied = session.scalar(select(func.count()).where(d.store_id == store.id, d.processed_at.is_not(None)))
        letters = deadletters.dead_letters(session, store.id)
        if request.accept_mimetypes.best == "application/json":
            return jsonify(shop=store.domain, pending=pending, applied=applied, dead_letters=[
                {"id": x.id, "topic": x.topic, "received_at": x.received_at.isoformat(), "attempts": x.attempts,
                 "state": "failed" if x.failed_at else x.outcome, "error": x.error} for x in letters])  # fmt: skip
        token = runtime().settings.admin_token  # the page goes only to who presented it
        return render_template_string(_PAGE, shop=store.domain, pending=pending, applied=applied, letters=letters,
                                      token=token)


@bp.post("/ops/stores/<shop>/deliveries/<id:delivery_id>/retry")
@require_operator
def retry(shop: str, delivery_id: int) -> Any:
    from app.web import runtime

    with runtime().sessions.begin() as session:  # the job is enqueued after commit
        store = _store(session, shop)
        if store is None or not deadletters.retry_dead(session, store.id, delivery_id):
            return jsonify(error="Not Found", detail="no dead letter with that id for this store"), 404
    if request.form.get("admin_token") is not None or request.accept_mimetypes.best == "text/html":
        return redirect(f"/ops/stores/{store.domain}", 303)
    return jsonify(status="retrying", id=delivery_id), 202
