"""The merchant app's overview page."""

from __future__ import annotations

from flask import render_template

from app.web.merchant import bp
from app.web.merchant.context import current_store, merchant_required


@bp.get("/")
@merchant_required
def home() -> str:
    return render_template("merchant/home.html", store=current_store())
