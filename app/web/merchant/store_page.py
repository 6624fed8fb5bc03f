"""Settings: the store's own settings that are not part of the flow or the setup guide (time zone, country,
currency, when a cart counts as abandoned, attribution, the storefront tracker and its exit offer, ...).

Like the Flow page, every value goes through `recovery.config.store_settings` (via `settings_form.apply`, the
code `cartresq store set` runs); every error is shown at once next to its field, and only what differs from
the value in force is stored. `tests/test_merchant_settings_page.py` checks that every setting has a page.
"""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, url_for

from app.web.merchant import bp, settings_form
from app.web.merchant.context import current_store, merchant_required
from app.web.merchant.flow import human
from recovery.config.store_settings import SPECS, format_duration

#: (heading, [(key, label)]), in page order; the hint under each field is the setting's own description.
SECTIONS: list[tuple[str, list[tuple[str, str]]]] = [
    ("Store", [("timezone", "Time zone"), ("country", "Country"), ("currency", "Currency")]),
    ("Carts and results", [("abandon_after", "A cart counts as abandoned after"),
                           ("attribution_window", "An order counts as recovered within")]),
    ("Messages", [("sms_min_cart_value", "Text message only for carts above"),
                  ("low_stock_threshold", "Say \"only N left\" at a stock of at most")]),
    ("Storefront tracker", [("exit_popup", "Show the exit-intent popup"),
                            ("exit_offer", "Exit offer text"),
                            ("exit_offer_percent", "Exit offer percent"),
                            ("exit_offer_window", "Exit offer code valid for"),
                            ("track_consent_required", "Keep contact details only with the shopper's consent"),
                            ("allowed_origins", "Other storefront addresses")]),
]
#: WooCommerce only: which order statuses are purchases.
WOO_SECTION = ("WooCommerce", [("woo_paid_statuses", "Order statuses that count as paid")])
#: The page's own words where a setting's description names other settings by their keys (the CLI's wording).
WORDS = {
    "exit_offer_percent": "percent off in the single-use code the exit popup gives out (0: the popup shows the "
                          "exit offer text only, without a code)",
}
#: Extra words where the setting's one-line description needs them.
HINTS = {
    "timezone": "An IANA name such as America/New_York or Europe/Berlin; pages show times in it.",
    "country": "Two letters (ISO 3166), e.g. US or DE; empty: not set.",
    "currency": "Three letters (ISO 4217), e.g. USD, EUR or GBP. Your platform prices carts and orders in the shop's "
                "own currency; this is the one pages show when a period has no recovered order to go by.",
    "sms_min_cart_value": "Used by the default flow's text-message step; once you edit the steps on the Flow page, "
                          "each step's own \"Only for carts above\" applies.",
    "allowed_origins": "Comma-separated, e.g. https://shop.example.com; your shop's own domain is always allowed.",
    "woo_paid_statuses": "Comma-separated, e.g. processing,completed,on-hold.",
}


def _sections(platform: str | None) -> list[tuple[str, list[tuple[str, str]]]]:
    return SECTIONS + ([WOO_SECTION] if platform == "woocommerce" else [])


def _switch(key: str) -> bool:
    return isinstance(SPECS[key].default, bool)


def _shown(key: str, value: Any) -> str:
    if _switch(key):
        return "on" if value else "off"
    if SPECS[key].show is format_duration:
        return human(value)
    return SPECS[key].show(value)


@bp.route("/settings", methods=["GET", "POST"])
@merchant_required
def settings() -> Any:
    store = current_store()
    sections = _sections(store.platform)
    keys = [key for _, fields in sections for key, _ in fields]
    errors: dict[str, str] = {}
    if request.method == "GET":
        fields = {key: _shown(key, settings_form.in_force(store, key)) for key in keys}
    else:
        fields = {key: ("on" if request.form.get(key) else "off") if _switch(key) else request.form.get(key, "")[:500]
                  for key in keys}
        op = request.form.get("op", "save")
        if op.startswith("reset:"):
            errors = settings_form.reset(store.id, op.partition(":")[2])
        else:
            _, errors = settings_form.apply(store.id, fields, only_changed=True)
        if not errors:
            return redirect(url_for("merchant.settings", store=request.args.get("store"), saved=1), 303)
    return render_template(
        "merchant/settings.html", sections=sections, fields=fields, errors=errors, help=SPECS, hints=HINTS, words=WORDS,
        switches={key for key in keys if _switch(key)}, custom=set(settings_form.stored(store.id)),
        defaults={key: _shown(key, SPECS[key].default) for key in keys}, saved=request.args.get("saved") == "1",
    ), 400 if errors else 200
