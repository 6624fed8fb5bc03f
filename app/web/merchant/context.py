"""Who is asking, and which one store the merchant app shows them.

`merchant_required` guards every merchant page; inside it `current_store()` is the store the page is about.
Today the doors are the operator token (any store, chosen with `?store=<domain>`) and, inside Shopify admin,
the session token (its own shop only). Every query of a merchant page is scoped to `current_store().id`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import abort, g, request
from sqlalchemy import select

from app.web.access import require_store_access, store_scope
from recovery.storage import tables as t


def merchant_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Only a signed-in merchant (or the operator) reaches `view`, with `g.store` set to the store shown."""

    @functools.wraps(view)
    def inner(*args: Any, **kwargs: Any) -> Any:
        from app.web import runtime

        wanted = request.args.get("store") or g.get("shop")
        with runtime().sessions() as session:
            query = select(t.Store).where(t.Store.uninstalled_at.is_(None), t.Store.id.in_(store_scope()))
            stores = session.scalars(query.order_by(t.Store.domain)).all()
            session.expunge_all()
        g.stores = stores
        chosen = [s for s in stores if s.domain == wanted] if wanted else stores[:1]
        if not chosen:
            abort(404, "no such store for this account")
        g.store = chosen[0]
        return view(*args, **kwargs)

    return require_store_access(inner)


def current_store() -> t.Store:
    """The store the current merchant page is about (detached row: read its id and settings)."""
    return g.store  # type: ignore[no-any-return]
