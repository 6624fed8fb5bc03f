"""The flows' copy: English and German catalogs complete, placeholders intact, other languages English
throughout; subjects that say what happened; the "you may also like" block only where it can be worded."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from recovery.messages import catalogs
from recovery.messages.content import FLOW_TEMPLATES, ProductView, render_email, render_sms, sample_context
from recovery.config.store_settings import SettingError, parse_assignments

LOCALE = Path(catalogs.__file__).parent / "locale"


def _read(path: Path) -> dict[str, object]:
    with path.open("rb") as handle:
        return {m.context: m for m in read_po(handle) if m.id}


def test_german_translates_every_flow_string_with_its_placeholders() -> None:
    template, german = _read(LOCALE / "flows.pot"), _read(LOCALE / "de" / "LC_MESSAGES" / "flows.po")
    assert set(german) == set(template) and len(template) >= 20
    for context, message in german.items():
        english = template[context].id  # type: ignore[attr-defined]
        assert message.id == english and message.string and message.string != english, context  # type: ignore[attr-defined]
        assert set(re.findall(r"\{(\w+)\}", message.string)) == set(re.findall(r"\{(\w+)\}", english)), context  # type: ignore[attr-defined]


def _flow(template: str, locale: str = "en-US"):  # type: ignore[no-untyped-def]
    ctx = sample_context(locale, "EUR" if locale.startswith(("de", "fr")) else "USD")
    flow = {"item": "Enamel Camp Mug", "now": "18.00", "was": "24.00"}
    products = (ProductView("Wool Socks", Decimal("12"), "https://hollow-oak-goods.myshopify.com/products/socks"),
                ProductView("Linen Apron", Decimal("30"), "https://hollow-oak-goods.myshopify.com/products/apron"))
    if template in ("cross_sell", "browse_abandonment"):
        return replace(ctx, items=(), flow={**flow, "source": "co_purchase"}, products=products)
    return replace(ctx, flow=flow)


@pytest.mark.parametrize("template", FLOW_TEMPLATES)
def test_every_flow_template_renders_in_english_and_german(template: str) -> None:
    english, german = render_email(template, _flow(template)), render_email(template, _flow(template, "de-DE"))
    said = "Wool Socks" if template == "cross_sell" else "Enamel Camp Mug"  # the cross-sell names its products
    assert english.subject != german.subject and 'lang="de"' in german.html and said in english.subject + english.text


def test_the_price_drop_says_old_and_new_price_and_a_language_without_flow_copy_gets_english() -> None:
    assert render_email("price_drop", _flow("price_drop")).subject == "Price drop: Enamel Camp Mug is now $18.00"
    assert render_email("price_drop", _flow("price_drop", "de-DE")).subject == "Preissenkung: Enamel Camp Mug kostet jetzt 18,00\xa0€"
    french = render_email("price_drop", _flow("price_drop", "fr-FR"))
    assert 'lang="en"' in french.html and french.subject == "Price drop: Enamel Camp Mug is now €18.00"
    assert "Bonjour" not in french.text
    assert "(was $24.00)" in render_sms("price_drop", _flow("price_drop"))


def test_a_flow_template_without_its_facts_is_refused() -> None:
    with pytest.raises(ValueError, match="needs its facts"):
        render_email("back_in_stock", sample_context())


def test_you_may_also_like_in_a_cart_reminder() -> None:
    ctx = replace(sample_context(), products=_flow("cross_sell").products)
    assert "You may also like" in render_email("gentle_reminder", ctx).text
    assert "Wool Socks" not in render_email("gentle_reminder", replace(ctx, locale="fr-FR")).text  # no French wording


def test_flow_settings_are_validated_like_every_setting() -> None:
    assert parse_assignments(["price_drop=off", "price_drop_threshold=10%+2", "cross_sell_after=3d"]) == {
        "price_drop": False, "price_drop_threshold": "10%+2", "cross_sell_after": 3 * 86400}
    for bad in ("price_drop_threshold=10", "price_drop_threshold=0%", "cross_sell_after=7", "cross_sell=maybe"):
        with pytest.raises(SettingError):
            parse_assignments([bad])
