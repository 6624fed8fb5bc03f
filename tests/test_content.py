"""Recovery message content: exact prices per locale, links and footer in both parts, honesty rules, SMS."""

from __future__ import annotations

import html
from dataclasses import replace
from decimal import Decimal

import pytest

from recovery.messages.content import (
    TEMPLATES,
    ItemView,
    MessageContext,
    RenderedEmail,
    preview,
    render_email,
    render_sms,
    sample_context,
)

RESTORE = "https://app.example.com/r/tok-restore"
UNSUBSCRIBE = "https://app.example.com/u/tok-unsubscribe"
PIXEL = "https://app.example.com/o/tok-open"
ADDRESS = "12 Example Lane, Sampletown 12345"
BOWL = ItemView("Stoneware Bowl", "Sand", 2, Decimal("49.90"))
# The GSM 03.38 basic alphabet: an SMS using only these characters fits 160 per segment.
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def cart(*items: ItemView, **changes: object) -> MessageContext:
    ctx = MessageContext(
        store_name="Lindenhof Ceramics",
        store_url="https://lindenhof-ceramics.myshopify.com",
        postal_address=ADDRESS,
        first_name="Jo",
        locale="en-US",
        currency="USD",
        items=items or (BOWL,),
        total=Decimal("104.79"),  # shipping included: differs from the line total on purpose
        restore_url=RESTORE,
        unsubscribe_url=UNSUBSCRIBE,
        open_pixel_url=PIXEL,
        offer_code="SAVE15",
        offer_percent=15,
    )
    return replace(ctx, **changes)


def both(rendered: RenderedEmail) -> tuple[str, str]:
    """The HTML as a reader sees it (entities decoded) and the text part."""
    return html.unescape(rendered.html), rendered.text


LOCALES = [
    # locale, currency, unit price, line total (2 x), the lines' subtotal (not the cart's 104.79), fixed strings
    ("en-US", "USD", "$49.90", "$99.80", "Subtotal at today's prices",
     ("Return to your cart", "Don't remind me again", "Qty")),
    (
        "de-DE",
        "EUR",
        "49,90\xa0€",
        "99,80\xa0€",
        "Zwischensumme zu heutigen Preisen",
        ("Zurück zum Warenkorb", "Nicht mehr erinnern", "Menge"),
    ),
]


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("locale, currency, unit, line_total, total, words", LOCALES)
def test_every_template_renders_prices_links_and_footer_in_both_parts(
    template: str, locale: str, currency: str, unit: str, line_total: str, total: str, words: tuple[str, ...]
) -> None:
    # Given a cart of 2 × 49.90 in the cart's currency and the shopper's locale
    ctx = cart(locale=locale, currency=currency)
    # When every template is rendered
    rendered = render_email(template, ctx)
    # Then both parts carry the exact Babel-formatted prices, the links, the footer and localised words
    for part in both(rendered):
        assert unit in part and line_total in part and total in part
        assert RESTORE in part and UNSUBSCRIBE in part
        assert "Lindenhof Ceramics" in part and ADDRESS in part
        assert all(word in part for word in words)
    assert rendered.subject and "\n" not in rendered.subject


@pytest.mark.parametrize("template", TEMPLATES)
def test_footer_says_why_the_shopper_got_it(template: str) -> None:
    # Given an English and a German shopper / When rendered / Then the footer explains the checkout
    for part in both(render_email(template, cart())):
        assert "You started a checkout at Lindenhof Ceramics" in part
    for part in both(render_email(template, cart(locale="de-DE"))):
        assert "Sie haben bei Lindenhof Ceramics einen Bestellvorgang begonnen" in part


def test_markup_in_a_title_is_escaped_in_html_and_verbatim_in_text() -> None:
    # Given a product title and a store name containing markup
    title = 'Tasse "Morgen" <klein> & groß'
    ctx = cart(ItemView(title, None, 1, Decimal("12.00")), store_name="Kaffee & <b>Co</b>")
    # When rendered
    rendered = render_email("gentle_reminder", ctx)
    # Then the HTML escapes it and the text keeps it as written
    assert "&lt;klein&gt;" in rendered.html and "&amp; groß" in rendered.html
    assert "<klein>" not in rendered.html and "<b>Co</b>" not in rendered.html
    assert "Kaffee &amp; &lt;b&gt;Co&lt;/b&gt;" in rendered.html
    assert title in rendered.text and "Kaffee & <b>Co</b>" in rendered.text


@pytest.mark.parametrize("stock_left, shown", [(None, False), (3, True), (10, True), (11, False), (0, False)])
def test_low_stock_is_shown_only_from_inventory_facts(stock_left: int | None, shown: bool) -> None:
    # Given an item whose inventory count is known (or not)
    ctx = cart(replace(BOWL, stock_left=stock_left))
    # When rendered / Then "Only N left" appears exactly when inventory says 1..10
    for part in both(render_email("final_call", ctx)):
        assert (f"Only {stock_left} left" in part) is shown
        assert ("Only " in part) is shown
    german = both(render_email("final_call", replace(ctx, locale="de-DE")))
    assert all((f"Nur noch {stock_left} verfügbar" in part) is shown for part in german)


@pytest.mark.parametrize(
    "previous, shown",
    [(Decimal("59.90"), True), (Decimal("49.90"), False), (Decimal("39.90"), False), (None, False)],
)
def test_was_price_only_when_the_price_really_dropped(previous: Decimal | None, shown: bool) -> None:
    # Given an item whose recorded previous price is higher, equal, lower or unknown
    ctx = cart(replace(BOWL, previous_unit_price=previous))
    # When rendered / Then "now … (was …)" appears only for a real drop, and the old price never otherwise
    for part in both(render_email("value_proposition", ctx)):
        assert ("now $49.90 (was $59.90)" in part) is shown
        assert ("(was " in part) is shown
        if previous is not None and previous < BOWL.unit_price:
            assert f"${previous}" not in part  # a higher "previous" price is never shown


def test_offer_template_needs_a_real_offer() -> None:
    # Given a cart without an offer code or percent / When the offer is rendered / Then it refuses
    for missing in ({"offer_code": None}, {"offer_percent": None}, {"offer_code": ""}):
        with pytest.raises(ValueError, match="offer"):
            render_email("offer", cart(**missing))
        with pytest.raises(ValueError, match="offer"):
            render_sms("offer", cart(**missing))
    with pytest.raises(ValueError, match="offer_percent"):
        render_email("offer", cart(offer_percent=150))


def test_offer_carries_code_and_percent_in_subject_body_and_sms() -> None:
    # Given a real 15 % offer / When rendered / Then subject, both parts and the SMS carry it
    rendered = render_email("offer", cart())
    assert rendered.subject == "Jo, here's 15% off the cart you left"
    assert all("SAVE15" in part and "15%" in part for part in both(rendered))
    sms = render_sms("offer", cart())
    assert "SAVE15" in sms and "15%" in sms
    assert "15 % Rabatt" in render_email("offer", cart(locale="de-DE")).subject
    assert "SAVE15" in render_sms("offer", cart(locale="de-DE"))


def test_subjects_are_honest_and_use_the_first_name_when_known() -> None:
    # Given shoppers with and without a known first name / When rendered / Then the seed's subjects
    subjects = {t: render_email(t, cart(first_name=None)).subject for t in TEMPLATES}
    assert subjects["gentle_reminder"] == "Did you mean to leave these behind?"
    assert subjects["value_proposition"] == "Still thinking it over?"
    assert subjects["offer"] == "15% off the cart you left"
    assert subjects["final_call"] == "Your cart is still saved — last reminder"
    assert render_email("value_proposition", cart()).subject == "Still thinking it over, Jo?"
    # A "name" carrying a header is no name (recovery/messages/names.py): the unnamed subject
    assert render_email("gentle_reminder", cart(first_name="Jo\nBcc: x")).subject == subjects["gentle_reminder"]
    named = [render_email(t, cart(locale=loc)).subject for t in TEMPLATES for loc in ("en-US", "de-DE")]
    assert all("Jo" in s and not any(w.isupper() and len(w) > 1 for w in s.split()) for s in named)


def test_open_pixel_only_when_given_and_never_in_text() -> None:
    # Given a context with and without an open-pixel URL / When rendered / Then the pixel follows it
    with_pixel = render_email("gentle_reminder", cart())
    assert (
        f'<img src="{PIXEL}" width="1" height="1" alt=""' in with_pixel.html and PIXEL not in with_pixel.text
    )
    assert "/o/" not in render_email("gentle_reminder", cart(open_pixel_url=None)).html


def test_item_image_variant_and_unknown_locale_fallback() -> None:
    # Given an item with an image and Shopify's placeholder variant, and a locale nobody supports
    item = ItemView("Linen Apron", "Default Title", 1, Decimal("30.00"), "https://cdn.example.com/apron.jpg")
    rendered = render_email("gentle_reminder", cart(item, locale="xx-YY"))
    # Then the image is shown, the placeholder hidden, and English with en formatting is used
    assert '<img src="https://cdn.example.com/apron.jpg"' in rendered.html
    assert "Default Title" not in rendered.html + rendered.text
    assert "Return to your cart" in rendered.text and "$30.00" in rendered.text
    with pytest.raises(ValueError, match="unknown template"):
        render_email("../secrets", cart())


@pytest.mark.parametrize("template", TEMPLATES)
def test_sms_is_short_gsm7_and_says_how_to_opt_out(template: str) -> None:
    # Given a short restore URL / When the SMS is rendered in English and German
    ctx = cart(restore_url="https://lch.example.com/r/Ab3dE9")
    english, german = render_sms(template, ctx), render_sms(template, replace(ctx, locale="de-DE"))
    # Then each fits one GSM-7 segment and carries the store, the link and the opt-out wording
    for sms, stop in ((english, "Reply STOP to opt out"), (german, "STOP zum Abbestellen")):
        assert len(sms) <= 160 and set(sms) <= GSM7, sms
        assert "Lindenhof Ceramics" in sms and "https://lch.example.com/r/Ab3dE9" in sms and stop in sms
    # And in English one segment holds even a full signed restore link (81 characters)
    signed = "https://app.example.com/r/WzEyMzQ1Niw2NTQzMjFd.awo8Xg.I5LkDv4zd7FFffjpTMQXG1sGgTM"
    assert len(render_sms(template, replace(ctx, restore_url=signed))) <= 160


@pytest.mark.parametrize("template", TEMPLATES)
def test_sms_never_passes_320_characters(template: str) -> None:
    # Given a very long store name and a realistic signed restore URL
    long_url = "https://app.example.com/r/" + "WzEyMzQ1LDY3ODkwXQ.Zq3kLw." + "x" * 43
    ctx = cart(
        store_name="The Very Long Name Of A Ceramics Workshop And Tea Room In Sampletown",
        restore_url=long_url,
    )
    # When rendered / Then it stays within 320 characters and keeps the full link
    for sms in (render_sms(template, ctx), render_sms(template, replace(ctx, locale="de-DE"))):
        assert len(sms) <= 320 and long_url in sms and sms.startswith("The Very Long Name")
    # And a link that cannot fit is refused rather than cut
    with pytest.raises(ValueError, match="320"):
        render_sms(template, replace(ctx, restore_url="https://app.example.com/r/" + "x" * 400))


@pytest.mark.parametrize("template", TEMPLATES)
def test_preview_renders_the_sample_cart(template: str) -> None:
    # Given the sample cart / When previewed in English and German / Then it shows its facts
    for locale, button in (("en-US", "Return to your cart"), ("de-DE", "Zurück zum Warenkorb")):
        rendered = preview(template, locale)
        sample = sample_context(locale)
        assert sample.restore_url in rendered.text and button in rendered.text
        assert sample.store_name in rendered.subject + rendered.text
    assert "WELCOME10" in preview("offer").text
