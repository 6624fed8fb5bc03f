"""The merchant app's overview page: the setup progress and where to go next."""

from __future__ import annotations

from flask import render_template

from app.web.merchant import bp
from app.web.merchant.context import current_store, merchant_required
from app.web.merchant.setup import steps
from recovery.storage import tables as t


@bp.get("/")
@merchant_required
def home() -> str:
    from app.web import runtime

    store = current_store()
    with runtime().sessions() as db:
        shown = steps(db, db.get(t.Store, store.id))
    return render_template("merchant/home.html", store=store, steps=shown, done=sum(s.done for s in shown))
