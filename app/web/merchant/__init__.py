"""The merchant app at /app: one set of pages behind two doors (inside Shopify admin, and standalone).

- `context.py`: who is asking and which store they see (`merchant_required`, `current_store()`).
- `nav.py`: the pages in the navigation, in one list.
- One module per page (or group of pages); templates under `app/web/templates/merchant/`, each extending
  `merchant/base.html` (blocks `title` and `content`).
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("merchant", __name__, url_prefix="/app")

from app.web.merchant import home  # noqa: E402,F401  (registers its routes on bp)
from app.web.merchant import carts, performance  # noqa: E402,F401  (insights: Performance, Carts)


@bp.context_processor
def _layout() -> dict[str, object]:
    """What base.html needs on every merchant page: the menu, and the store to keep in links."""
    from flask import g

    from app.web.merchant.nav import NAV

    store = g.get("store")
    return {"nav": NAV, "store_param": store.domain if store is not None and g.get("operator") else None}
