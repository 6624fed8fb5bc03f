"""The figure under a message's lines is their sum at the prices shown, in every template, channel and
language: after a price drop a cart's stored total (old prices) must never sit under today's lines."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from decimal import Decimal

import pytest

from recovery.messages.content import (
    FLOW_TEMPLATES,
    TEMPLATES,
    ItemView,
    render_email,
    render_sms,
    sample_context,
)
from recovery.messages.push_content import render_push

# The reviewer's cart: 18.00 + 26.00 (was 32.50); its stored total 50.50 is from before the drop.
LINES = (
    ItemView("Enamel Camp Mug", None, 1, Decimal("18.00")),
    ItemView("Waxed Canvas Tote", None, 1, Decimal("26.00"), previous_unit_price=Decimal("32.50")),
)
STALE = Decimal("50.50")
# locale, the sum of the lines, the stale total, the label for the lines' sum, the label for a real total
LANGUAGES = [
    ("en-US", "$44.00", "$50.50", "Subtotal at today's prices", "Total"),
    ("de-DE", "44,00\xa0$", "50,50\xa0$", "Zwischensumme zu heutigen Preisen", "Summe"),
]
CART_TEMPLATES = tuple(t for t in TEMPLATES + FLOW_TEMPLATES if t not in ("cross_sell", "browse_abandonment"))


def _ctx(locale: str, total: Decimal = STALE):  # type: ignore[no-untyped-def]
    flow = {"item": "Waxed Canvas Tote", "now": "26.00", "was": "32.50"}
    return replace(sample_context(locale, "USD"), items=LINES, total=total, flow=flow)


def _total_line(text: str) -> str:
    """The text part's line after the last item: the figure under the lines (label: amount)."""
    lines = text.splitlines()
    last_item = max(i for i, line in enumerate(lines) if line.startswith("- "))
    return next(line for line in lines[last_item + 1:] if line and not line.startswith(" "))


@pytest.mark.parametrize("template", CART_TEMPLATES)
@pytest.mark.parametrize("locale, summed, stale, label, total_word", LANGUAGES)
def test_email_total_is_the_sum_of_the_lines_shown_after_a_price_drop(
    template: str, locale: str, summed: str, stale: str, label: str, total_word: str
) -> None:
    # Given a cart whose stored total predates a price drop on one of its lines
    rendered = render_email(template, _ctx(locale))
    # Then HTML and text show the lines' sum, say what it is, and never the stale total
    page = html.unescape(rendered.html)
    for part in (page, rendered.text):
        assert summed in part and stale not in part, template
        assert label in part, template
    assert _total_line(rendered.text) == f"{label}: {summed}"
    assert re.search(rf"{re.escape(label)}</td>\s*<td[^>]*>{re.escape(summed)}</td>", page)


@pytest.mark.parametrize("locale, summed, stale, label, total_word", LANGUAGES)
def test_a_total_that_matches_the_lines_is_called_total(
    locale: str, summed: str, stale: str, label: str, total_word: str
) -> None:
    # Given a cart whose total is exactly its lines at today's prices / Then it is simply the total
    text = render_email("gentle_reminder", _ctx(locale, Decimal("44.00"))).text
    assert _total_line(text) == f"{total_word}: {summed}" and label not in text


@pytest.mark.parametrize("template", CART_TEMPLATES)
@pytest.mark.parametrize("locale, summed, stale, label, total_word", LANGUAGES)
def test_sms_and_push_never_show_a_total(
    template: str, locale: str, summed: str, stale: str, label: str, total_word: str
) -> None:
    # SMS and push carry no total at all (only the flow's own item price), so none can contradict a line.
    sms = render_sms(template, _ctx(locale))
    assert stale not in sms and summed not in sms
    if template in TEMPLATES:
        title, body = render_push(template, _ctx(locale))
        assert "$" not in title + body


def test_a_line_taken_out_of_the_cart_is_not_shown() -> None:
    from recovery.intake.catalog import item_views
    from recovery.storage import tables as t

    cart = t.Cart(line_items=[
        {"title": "Enamel Camp Mug", "quantity": 0, "unit_price": "49.90"},  # Shopify keeps a removed line at 0
        {"title": "Waxed Canvas Tote", "quantity": 2, "unit_price": "26.00"},
    ])  # fmt: skip
    views = item_views(None, t.Store(platform="shopify", domain="x.myshopify.com"), cart)
    assert [(v.title, v.quantity) for v in views] == [("Waxed Canvas Tote", 2)]
