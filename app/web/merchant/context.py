"""Who is asking, and which one store the merchant app shows them.

`merchant_required` guards every merchant page; inside it `current_store()` is the store the page is about.
Three ways in, checked in this order:

- the operator token (`Authorization: Bearer`, or basic auth): any store, chosen with `?store=<domain>`;
- inside Shopify admin (the embedded door): the session token (`Authorization: Bearer` from App Bridge, or
  `id_token` on the first document load): that shop only; `g.embedded` is then true;
- standalone: a signed-in merchant account (cookie `cartresq_session`): the stores linked to the account,
  one at a time (`?store=<domain>`, else the one last chosen with the store switcher, else the first).

A visitor with none of these gets the sign-in page (HTML GET) or 401. Every query of a merchant page is
scoped to `current_store().id`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import abort, g, redirect, request, session, url_for
from sqlalchemy import select

from app.web.access import is_operator, store_scope, unauthorized
from app.web.merchant import accounts
from recovery.storage import tables as t
from recovery.storage.tables import utcnow

SESSION_COOKIE = "cartresq_session"


def _from_shopify_admin() -> bool:
    """The request comes through the embedded door: a bearer that is not the operator's, or App Bridge's
    document parameters."""
    auth = request.authorization
    return (auth is not None and auth.type == "bearer") or bool(request.args.get("id_token")) or (
        bool(request.args.get("shop")) and bool(request.args.get("host")))


def signed_in_account() -> t.MerchantAccount | None:
    from app.web import runtime

    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with runtime().sessions() as db:
        account = accounts.session_account(db, token, utcnow())
        if account is not None:
            db.expunge(account)
    return account


def merchant_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Only a signed-in merchant (or the operator) reaches `view`, with `g.store` set to the store shown."""

    def scoped(*args: Any, **kwargs: Any) -> Any:
        from app.web import runtime

        wanted = request.args.get("store") or g.get("shop")
        with runtime().sessions() as db:
            query = select(t.Store).where(t.Store.uninstalled_at.is_(None), t.Store.id.in_(store_scope()))
            if g.get("operator"):  # every store is in scope: read only the one asked for (or the first), not 2,000
                query = query.where(t.Store.domain == wanted) if wanted else query.limit(1)
            stores = db.scalars(query.order_by(t.Store.domain)).all()
            db.expunge_all()
        g.stores = stores
        if wanted:
            chosen = [s for s in stores if s.domain == wanted]
        else:
            remembered = session.get("store_id") if g.get("account") else None
            chosen = [s for s in stores if s.id == remembered] or stores[:1]
        if not chosen:
            if g.get("account") is not None and not stores and not wanted:
                return redirect(url_for("merchant.no_store"))
            abort(404, "no such store for this account")
        g.store = chosen[0]
        return view(*args, **kwargs)

    @functools.wraps(view)
    def inner(*args: Any, **kwargs: Any) -> Any:
        from app.web import runtime
        from app.web.auth import require_session

        rt = runtime()
        g.operator, g.shop, g.store_status, g.account, g.embedded = False, None, None, None, False
        if is_operator(rt.settings):
            g.operator = True
            return scoped(*args, **kwargs)
        if _from_shopify_admin():
            if rt.shopify is None:
                return unauthorized()

            def embedded(*a: Any, **k: Any) -> Any:
                g.embedded = True
                return scoped(*a, **k)

            return require_session(embedded)(*args, **kwargs)  # sets g.shop, or 401 / the bounce page
        account = signed_in_account()
        if account is None:
            if request.method == "GET":
                return redirect(url_for("merchant.sign_in", next=request.full_path.rstrip("?")))
            return unauthorized("sign in first")
        g.account = account
        return scoped(*args, **kwargs)

    return inner


def current_store() -> t.Store:
    """The store the current merchant page is about (detached row: read its id and settings)."""
    return g.store  # type: ignore[no-any-return]
