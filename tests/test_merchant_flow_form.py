"""The flow page as a form: every error at once next to its field with the typed values kept, only what the
merchant changed is stored, a step is removed only once confirmed, and a negative "only for carts above" is
refused (in the CLI too)."""

from __future__ import annotations

import re

from app.runtime import Runtime
from recovery.config.store_settings import SettingError, effective, parse_assignments
from recovery.sequence.plan import store_sequence
from tests.merchant_helpers import store_settings
from tests.test_merchant_pages import _flow_form, _signed_in


def _value(page: str, name: str) -> str:
    match = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', page)
    assert match, name
    return match.group(1)


def test_every_bad_value_is_shown_next_to_its_field_and_the_typed_values_stay(runtime: Runtime, client) -> None:
    store = _signed_in(runtime, client)
    form = _flow_form(client.get("/app/flow").get_data(as_text=True))
    typed = {"offer_percent": "150", "holdout_percent": "ten", "first_message_min": "10", "shopper_cap": "often",
             "step-3-min": "-50", "step-2-delay": "soon"}
    answer = client.post("/app/flow", data={**form, **typed, "offer_window": "3 d"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "fix the 6 fields marked below" in page
    for name in typed:  # each error at its own field, not only the first one
        assert f'id="err-{name}"' in page, name
        assert _value(page, name) == typed[name], name  # what was typed is still there to correct
    assert _value(page, "offer_window") == "3 d"  # the good values typed next to them too
    assert "cannot be negative" in page and "is outside 0..100" in page and "has no unit" in page
    assert store_settings(runtime, store) == {}  # nothing saved while an error remains


def test_saving_stores_only_what_the_merchant_changed(runtime: Runtime, client) -> None:
    store = _signed_in(runtime, client)
    form = _flow_form(client.get("/app/flow").get_data(as_text=True))
    assert client.post("/app/flow", data=form).status_code == 303  # saved as shown: nothing to store
    assert store_settings(runtime, store) == {}
    page = client.get("/app/flow").get_data(as_text=True)
    assert "Reset to default" not in page  # defaults are not pinned: every field still follows them
    changed = client.post("/app/flow", data={**_flow_form(page), "offer_percent": "15", "first_message_max": "6 h"})
    assert changed.status_code == 303
    assert store_settings(runtime, store) == {"offer_percent": 15, "first_message_max": 6 * 3600}
    page = client.get("/app/flow").get_data(as_text=True)
    assert page.count("Reset to default") == 2
    assert client.post("/app/flow", data=_flow_form(page)).status_code == 303  # saving again changes nothing
    assert store_settings(runtime, store) == {"offer_percent": 15, "first_message_max": 6 * 3600}
    moved = client.post("/app/flow", data={**_flow_form(page), "step-3-min": "80"})  # a step edited: sequence stored
    assert moved.status_code == 303 and "sequence" in store_settings(runtime, store)


def test_removing_a_step_asks_first_and_keeps_what_was_typed(runtime: Runtime, client) -> None:
    store = _signed_in(runtime, client)
    form = _flow_form(client.get("/app/flow").get_data(as_text=True))
    asked = client.post("/app/flow", data={**form, "offer_percent": "15", "op": "remove:4"})
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "Remove step 4?" in page and 'value="remove-confirmed:4"' in page
    assert _value(page, "offer_percent") == "15" and _value(page, "steps") == "4"
    assert store_settings(runtime, store) == {}  # nothing removed, nothing saved yet
    kept = client.post("/app/flow", data={**_flow_form(page), "op": "keep"})
    assert kept.status_code == 200 and "Remove step 4?" not in kept.get_data(as_text=True)
    assert store_settings(runtime, store) == {}
    removed = client.post("/app/flow", data={**_flow_form(page), "op": "remove-confirmed:4"})
    assert removed.status_code == 303
    steps = store_sequence(effective(store_settings(runtime, store)), switched_off=True)
    assert [s.template for s in steps] == ["gentle_reminder", "value_proposition", "offer"]


def test_a_negative_cart_minimum_is_refused_in_the_app_and_the_cli(runtime: Runtime, client) -> None:
    store = _signed_in(runtime, client)
    form = _flow_form(client.get("/app/flow").get_data(as_text=True))
    answer = client.post("/app/flow", data={**form, "step-3-min": "-50"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400 and 'id="err-step-3-min"' in page and "cannot be negative" in page
    assert "sequence" not in store_settings(runtime, store)
    for bad in ('[{"channel": "sms", "template": "offer", "delay": "2d", "min_total": "-50"}]',
                '[{"channel": "sms", "template": "offer", "delay": "2d", "min_total": "fifty"}]'):
        try:
            parse_assignments([f"sequence={bad}"])
        except SettingError as exc:
            assert "step 1:" in str(exc)
        else:
            raise AssertionError(f"accepted {bad}")
    assert client.post("/app/flow", data={**form, "step-3-min": "0"}).status_code == 303  # zero: any cart above 0
