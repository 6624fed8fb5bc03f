"""Push notification text: short, honest, in the shopper's language, the offer only with a real code."""

from __future__ import annotations

from dataclasses import replace

import pytest

from recovery.messages.content import sample_context
from recovery.messages.push_content import BODY_MAX, TITLE_MAX, render_push
from recovery.sequence.plan import parse_sequence


def test_each_template_in_english_without_prices_or_names() -> None:
    ctx = sample_context()
    bodies = {
        template: render_push(template, ctx)
        for template in ("gentle_reminder", "value_proposition", "final_call")
    }
    assert bodies["gentle_reminder"] == (
        "Hollow Oak Goods",
        "You left items in your cart. It's saved: tap to pick up where you left off.",
    )
    assert bodies["final_call"][1] == "Last reminder: your cart is still saved. Tap to return to it."
    for title, body in bodies.values():
        assert "Alex" not in body and "$" not in body and len(title) <= TITLE_MAX and len(body) <= BODY_MAX


def test_the_offer_line_only_with_a_real_code() -> None:
    ctx = sample_context()
    assert render_push("offer", ctx)[1] == "10% off your cart with code WELCOME10. Tap to return to it."
    plain = render_push("offer", replace(ctx, offer_code=None, offer_percent=None))[1]
    assert plain == render_push("gentle_reminder", ctx)[1]


def test_german_and_a_fallback_to_english() -> None:
    assert render_push("final_call", sample_context("de-DE", "EUR"))[1].startswith("Letzte Erinnerung")
    assert render_push("final_call", sample_context("fr-FR", "EUR"))[1].startswith("Dernier rappel")
    assert render_push("final_call", sample_context("ja-JP", "JPY"))[1].startswith("Last reminder")
    assert render_push("final_call", replace(sample_context(), locale="not a locale"))[1].startswith("Last")


def test_a_long_store_name_is_clipped_and_unknown_templates_refused() -> None:
    title, _ = render_push("gentle_reminder", replace(sample_context(), store_name="Long " * 30))
    assert len(title) == TITLE_MAX and title.endswith("...")
    with pytest.raises(ValueError, match="unknown template"):
        render_push("countdown", sample_context())


def test_a_store_sequence_may_have_push_steps() -> None:
    steps = parse_sequence(
        '[{"channel": "push", "template": "gentle_reminder", "delay": null},'
        ' {"channel": "email", "template": "final_call", "delay": 86400}]'
    )
    assert [(s.channel, s.template) for s in steps] == [("push", "gentle_reminder"), ("email", "final_call")]
    with pytest.raises(ValueError, match="channel must be email, sms or push"):
        parse_sequence('[{"channel": "fax", "template": "gentle_reminder", "delay": null}]')
