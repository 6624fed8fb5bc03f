"""The merchant app's overview page: the setup progress and where to go next."""

from __future__ import annotations

from flask import render_template

from app.merchant import bp
from app.merchant.context import current_store, merchant_required
from app.merchant.setup import steps
from recovery import tables as t


@bp.get("/")
@merchant_required
def home() -> str:
    from app import runtime

    store = current_store()
    with runtime().sessions() as db:
        shown = steps(db, db.get(t.Store, store.id))
    return render_template("merchant/home.html", store=store, steps=shown, done=sum(s.done for s in shown))
