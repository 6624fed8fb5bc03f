"""The merchant pages through the test client: setup guide from real state, flow editor on the CLI's
validation, templates with the real renderer and a test email, store status with its fixing buttons."""

from __future__ import annotations

import json

from sqlalchemy import select

from app.runtime import Runtime
from recovery.storage import tables as t
from recovery.sequence.plan import store_sequence
from recovery.config.store_settings import effective
from tests.conftest import add_store
from tests.merchant_helpers import body_of, make_account, outbox_emails, sign_in, store_settings, token_for

SHOP = "amber-loom.myshopify.com"


def _signed_in(runtime: Runtime, client) -> int:  # type: ignore[no-untyped-def]
    store = add_store(runtime, SHOP)
    with runtime.sessions.begin() as db:
        db.get(t.Store, store).settings = {}  # a fresh store: nothing set up
    make_account(runtime, "owner@example.com", store)
    assert sign_in(client, "owner@example.com").status_code == 303
    return store


def test_setup_guide_checks_steps_off_from_real_state(runtime: Runtime, client) -> None:
    store = _signed_in(runtime, client)
    page = client.get("/app/setup").get_data(as_text=True)
    assert "0 of 6 steps done" in page
    assert f"https://{SHOP}/admin/themes/current/editor?context=apps&amp;activateAppId=test-api-key/cartresq-embed" in page
    token = token_for(client, "/app/setup")
    bad = client.post("/app/setup/sender", data={"csrf_token": token, "sender_name": "Amber Loom", "reply_to": "nope"})
    assert bad.status_code == 400 and "is not an email address" in bad.get_data(as_text=True)
    assert "reply_to" not in store_settings(runtime, store)  # one bad value: nothing saved
    for step, data in [("address", {"postal_address": "1 Example Street, Springfield"}),
                       ("sender", {"sender_name": "Amber Loom", "reply_to": "help@example.com"}),
                       ("channels", {"sms_enabled": "on"}), ("consent", {"email_consent_policy": "opt_in_only"})]:
        assert client.post(f"/app/setup/{step}", data={"csrf_token": token, **data}).status_code == 303, step
    assert "4 of 6 steps done" in client.get("/app/setup").get_data(as_text=True)
    assert client.post("/app/setup/test", data={"csrf_token": token}).status_code == 303
    [mail] = outbox_emails(runtime)
    assert mail["To"] == "owner@example.com" and mail["Reply-To"] == "help@example.com"
    assert mail["Subject"].startswith("[Test] ") and "1 Example Street" in body_of(mail)
    with runtime.sessions.begin() as db:  # the tracker reports: the embed step is done
        from recovery.storage.tables import utcnow

        db.add(t.TrackEvent(store_id=store, sid="s1", type="exit_intent", at=utcnow()))
    assert "6 of 6 steps done" in client.get("/app/setup").get_data(as_text=True)
    settings = effective(store_settings(runtime, store))
    assert (settings["sender_name"], settings["email_consent_policy"], settings["sms_enabled"]) == (
        "Amber Loom", "opt_in_only", True)


def _flow_form(page: str, **changes: str) -> dict[str, str]:
    import re

    form = {}
    for name, value in re.findall(r'<input type="(?:text|number)" id="[^"]+" name="([^"]+)" value="([^"]*)"', page):
        form[name] = value
    for name, value in re.findall(r'<select id="[^"]+" name="([^"]+)">.*?<option value="([^"]+)" selected', page, re.S):
        form[name] = value
    for name in re.findall(r'<input type="checkbox" name="([^"]+)" value="[^"]+" checked', page):
        form[name] = "1" if name != "sms_enabled" else "on"
    form["steps"] = re.search(r'name="steps" value="(\d+)"', page).group(1)
    form["csrf_token"] = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form.update(changes)
    return form


def test_flow_editor_saves_through_the_cli_validation_with_inline_errors(runtime: Runtime, client) -> None:
    store = _signed_in(runtime, client)
    page = client.get("/app/flow").get_data(as_text=True)
    assert "08:00-21:00" in page  # the legal SMS limit is shown
    form = _flow_form(page)
    assert form["steps"] == "4" and form.get("model_first") == "1"
    wide = client.post("/app/flow", data={**form, "sms_window": "07:00-22:00"})
    text = wide.get_data(as_text=True)
    assert wide.status_code == 400 and "wider than the law allows" in text and 'id="err-sms_window"' in text
    assert "sms_window" not in store_settings(runtime, store)
    for quiet in ("22:00-22:00", "00:00-24:00"):  # the whole day: every email would be cancelled
        silent = client.post("/app/flow", data={**form, "email_quiet_hours": quiet})
        text = silent.get_data(as_text=True)
        assert silent.status_code == 400 and "quiet all day" in text and 'id="err-email_quiet_hours"' in text
    short = client.post("/app/flow", data={**form, "email_quiet_hours": "06:00-03:00"})
    assert short.status_code == 400 and "leaves only 3 h a day to send email" in short.get_data(as_text=True)
    assert "email_quiet_hours" not in store_settings(runtime, store)
    answer = client.post("/app/flow", data={**form, "step-2-delay": "1 h", "step-3-on": "", "offer_percent": "15",
                                            "email_quiet_hours": "22:00-07:00", "holdout_percent": "20"})
    assert answer.status_code == 303
    settings = effective(store_settings(runtime, store))
    steps = store_sequence(settings, switched_off=True)
    assert steps[1].delay == 3600 and not steps[2].enabled and steps[0].delay is None
    assert [s.step for s in store_sequence(settings)] == [1, 2, 4]  # step 3 is off, the others keep their numbers
    assert (settings["offer_percent"], settings["email_quiet_hours"], settings["holdout_percent"]) == (
        15, "22:00-07:00", 20)
    # the CLI shows what the editor saved, switched-off step included
    from recovery.config.store_settings import describe

    shown = dict((k, v) for k, v, _ in describe(store_settings(runtime, store)))
    assert "!sms:offer+2d>50" in shown["sequence"]
    page = client.get("/app/flow").get_data(as_text=True)
    moved = client.post("/app/flow", data={**_flow_form(page), "op": "up:4"})
    assert moved.status_code == 400 and "time order" in moved.get_data(as_text=True)  # same rule as the CLI
    removed = client.post("/app/flow", data={**_flow_form(page), "op": "remove-confirmed:4"})
    assert removed.status_code == 303
    assert len(store_sequence(effective(store_settings(runtime, store)), switched_off=True)) == 3
    reset = client.post("/app/flow", data={**_flow_form(client.get("/app/flow").get_data(as_text=True)),
                                           "op": "reset:offer_percent"})
    assert reset.status_code == 303 and "offer_percent" not in store_settings(runtime, store)
    bad_delay = client.post("/app/flow", data={**_flow_form(client.get("/app/flow").get_data(as_text=True)),
                                               "step-2-delay": "10"})
    assert bad_delay.status_code == 400 and "has no unit" in bad_delay.get_data(as_text=True)


def test_triggered_flows_are_set_on_the_flow_page_through_the_cli_validation(runtime: Runtime, client) -> None:
    store = _signed_in(runtime, client)
    page = client.get("/app/flow").get_data(as_text=True)
    assert "Triggered flows" in page and "viewed twice in a visit" in page
    form = _flow_form(page)
    assert form.get("price_drop") == "1" and "cross_sell" not in form  # the defaults: on, off
    assert (form["price_drop_threshold"], form["cross_sell_after"]) == ("5%", "7 d")
    bad = client.post("/app/flow", data={**form, "cross_sell": "on", "price_drop_threshold": "5 percent"})
    text = bad.get_data(as_text=True)
    assert bad.status_code == 400 and 'id="err-price_drop_threshold"' in text and "is not a threshold" in text
    assert "cross_sell" not in store_settings(runtime, store)  # one bad value: nothing saved
    no_unit = client.post("/app/flow", data={**form, "browse_abandonment_after": "10"})
    assert no_unit.status_code == 400 and 'id="err-browse_abandonment_after"' in no_unit.get_data(as_text=True)
    del form["price_drop"]  # unticked: off
    saved = client.post("/app/flow", data={**form, "cross_sell": "on", "cross_sell_after": "3 d",
                                           "price_drop_threshold": "10%+2", "browse_abandonment": "on"})
    assert saved.status_code == 303
    settings = effective(store_settings(runtime, store))
    assert (settings["price_drop"], settings["cross_sell"], settings["browse_abandonment"], settings["back_in_stock"],
            settings["cross_sell_after"], settings["price_drop_threshold"]) == (False, True, True, True, 3 * 86400,
                                                                                "10%+2")
    page = client.get("/app/flow").get_data(as_text=True)
    assert 'name="cross_sell" value="on" checked' in page and 'name="price_drop" value="on" checked' not in page
    reset = client.post("/app/flow", data={**_flow_form(page), "op": "reset:cross_sell_after"})
    assert reset.status_code == 303 and "cross_sell_after" not in store_settings(runtime, store)


def test_templates_preview_with_the_real_renderer_and_send_a_test(runtime: Runtime, client) -> None:
    store = _signed_in(runtime, client)
    page = client.get("/app/templates?template=offer&language=en").get_data(as_text=True)
    assert "Your offer is off" in page  # offer_percent 0: the offer step goes out as the first reminder
    token = token_for(client, "/app/templates")
    with runtime.sessions.begin() as db:
        db.get(t.Store, store).settings = {"offer_percent": 12, "postal_address": "1 Example Street"}
    page = client.get("/app/templates?template=offer&language=en").get_data(as_text=True)
    assert "12% off" in page and "PREVIEW-CODE" in page
    bad = client.post("/app/templates", data={"csrf_token": token, "template": "offer", "language": "en",
                                              "subject": "Hello {store.__class__}", "op": "save"})
    assert bad.status_code == 400 and "is not a placeholder here" in bad.get_data(as_text=True)
    saved = client.post("/app/templates", data={"csrf_token": token, "template": "offer", "language": "en",
                                                "subject": "{percent}% off at {store}, just for you", "op": "save"})
    assert saved.status_code == 303
    with runtime.sessions() as db:
        [row] = db.scalars(select(t.StoreCopy).where(t.StoreCopy.store_id == store)).all()
    assert (row.template, row.language, row.part) == ("offer", "en", "subject")
    live = client.post("/app/templates/preview", data={"csrf_token": token, "template": "offer", "language": "en",
                                                       "subject": "Only {percent}% today"})
    assert live.status_code == 200 and json.loads(live.data)["subject"] == "Only 12% today"
    sent = client.post("/app/templates", data={"csrf_token": token, "template": "offer", "language": "en",
                                               "subject": "{percent}% off at {store}, just for you", "op": "test"})
    assert sent.status_code == 200 and "Test sent to owner@example.com" in sent.get_data(as_text=True)
    [mail] = outbox_emails(runtime)
    assert mail["Subject"] == f"[Test] 12% off at {SHOP}, just for you"


def test_a_stores_own_words_reach_real_messages(runtime: Runtime) -> None:
    from decimal import Decimal

    from recovery.messages import store_copy
    from recovery.messages.content import MessageContext, render_email, sample_context

    ctx = sample_context()
    own = {"subject.gentle_reminder": "{name}, your {store} cart", "intro.gentle_reminder": "We kept it for you."}
    named = render_email("gentle_reminder", MessageContext(**{**ctx.__dict__, "own_copy": own}))
    assert named.subject == "Alex, your Hollow Oak Goods cart" and "We kept it for you." in named.html
    anonymous = render_email("gentle_reminder", MessageContext(**{**ctx.__dict__, "own_copy": own,
                                                                   "first_name": None}))
    assert anonymous.subject == render_email("gentle_reminder", MessageContext(
        **{**ctx.__dict__, "first_name": None})).subject  # no name: the default words
    assert store_copy.fill("{code} {percent}", {"code": "X", "percent": 5}) == "X 5"
    assert Decimal("1")  # keeps the import honest


def test_store_status_shows_problems_with_their_buttons(runtime: Runtime, client) -> None:
    store = _signed_in(runtime, client)
    with runtime.sessions.begin() as db:
        delivery = t.WebhookDelivery(store_id=store, platform="shopify", shop=SHOP, topic="orders/create", delivery_id="d-1",
                                     payload={"id": 1}, attempts=5, error="boom")
        db.add(delivery)
        db.flush()
        delivery.failed_at = delivery.processed_at = delivery.received_at
        delivery_id = delivery.id
    page = client.get("/app/status").get_data(as_text=True)
    assert "No postal address" in page and 'action="/app/setup/address' in page
    assert "Reconnect to Shopify" in page  # no token stored for this store
    assert f"Retry event {delivery_id}" in page and "cartresq " not in page.lower().replace("cartresq ·", "")
    token = token_for(client, "/app/status")
    assert client.post(f"/app/status/deliveries/{delivery_id}/retry", data={"csrf_token": token}).status_code == 303
    with runtime.sessions() as db:
        assert db.get(t.WebhookDelivery, delivery_id).failed_at is None


def test_real_sends_carry_the_reply_to_and_the_stores_own_words(runtime: Runtime) -> None:
    from decimal import Decimal

    from recovery.messages import store_copy
    from recovery.storage.tables import utcnow

    store_id = add_store(runtime, SHOP)
    now = utcnow()
    with runtime.sessions.begin() as db:
        store = db.get(t.Store, store_id)
        store.settings = {**store.settings, "reply_to": "help@example.com", "sender_name": "Amber Loom"}
        store_copy.save(db, store_id, "gentle_reminder", "de", {"subject": "{name}, dein Korb bei {store}"})
        cart = t.Cart(store_id=store_id, email="shopper@example.com", first_name="Alex", locale="de-DE",
                      currency="EUR", subtotal=Decimal("20"), total=Decimal("20"), platform_updated_at=now,
                      last_activity_at=now, abandoned_at=now,
                      line_items=[{"title": "Mug", "variant_title": None, "quantity": 1, "unit_price": "20"}])
        db.add(cart)
        db.flush()
        message = t.RecoveryMessage(store_id=store_id, cart_id=cart.id, step=1, channel="email",
                                    template="gentle_reminder", due_at=now)
        db.add(message)
        db.flush()
        email = runtime.sender.composer.compose(store, cart, message)
        cart.locale = "fr-FR"  # no French words of the store's own: the default French copy
        french = runtime.sender.composer.compose(store, cart, message)
    assert email.reply_to == "help@example.com"
    assert email.subject == "Alex, dein Korb bei Amber Loom"
    assert "dein Korb" not in french.subject


def test_reason_codes_read_as_words() -> None:
    from app.web.merchant.reasons import words

    assert words("no_email_consent_region_GB") == "Not emailed: shoppers in the UK need marketing consent"
    assert words("no_email_consent_region_DE") == "Not emailed: shoppers in Germany need marketing consent"
    assert words("rescheduled: quiet_hours").startswith("Moved later. Waiting: it is night")
    assert words("some_new_code") == "Technical reason: some_new_code"


def test_the_cli_reads_and_shows_switched_off_steps() -> None:
    from recovery.config.store_settings import describe, parse_assignments

    parsed = parse_assignments(["sequence=email:gentle_reminder, !sms:offer+2d>50, email:final_call+3d"])
    assert [s.get("enabled", True) for s in parsed["sequence"]] == [True, False, True]
    shown = dict((k, v) for k, v, _ in describe({"sequence": parsed["sequence"]}))["sequence"]
    assert shown == "email:gentle_reminder, !sms:offer+2d>50, email:final_call+3d"
    from recovery.config.store_settings import SettingError

    try:
        parse_assignments(["sequence=!email:gentle_reminder"])
    except SettingError as exc:
        assert "at least one step must be on" in str(exc)
    else:
        raise AssertionError("a sequence with every step off was accepted")


def test_junk_input_is_a_4xx_and_test_emails_are_limited(runtime: Runtime, client) -> None:
    """Review findings: junk step counts, ids beyond bigint and control characters in `next` were 500s; the
    test message and reset links could be sent without limit."""
    store = _signed_in(runtime, client)
    token = token_for(client, "/app/flow")
    for steps in ("abc", "1e3", "-1"):
        assert client.post("/app/flow", data={"csrf_token": token, "steps": steps}).status_code == 400
    too_big = "/app/status/deliveries/99999999999999999999999/retry"
    assert client.post(too_big, data={"csrf_token": token}).status_code == 404
    assert client.get("/app/sign-in?next=/app/%0d%0aX:y").status_code in (200, 302, 303)
    with runtime.sessions.begin() as db:
        db.get(t.Store, store).settings = {"reply_to": "help@example.com", "postal_address": "1 Example Street"}
    answers = [client.post("/app/setup/test", data={"csrf_token": token}).status_code for _ in range(11)]
    assert answers[:10] == [303] * 10 and answers[10] == 400
    assert len(outbox_emails(runtime)) == 10
    client.post("/app/sign-out", data={"csrf_token": token})
    forgot = token_for(client, "/app/forgot")
    codes = [client.post("/app/forgot", data={"csrf_token": forgot, "email": "owner@example.com"}).status_code
             for _ in range(4)]
    assert codes == [200, 200, 200, 429]
