"""The recovery loop on SQLite and PostgreSQL: abandonment, holdout, planning, checked sends, attribution."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.sending import dispatch
from recovery.sending.channels import (
    FakeChannel,
    OutboundEmail,
    OutboundSms,
    PermanentSendError,
    TransientSendError,
)
from recovery.storage import tables as t
from tests.conftest import add_store, drain, make_settings
from tests.loop_helpers import (
    HOUR,
    abandon_all,
    cart,
    claim,
    daytime,
    loop_runtime,
    messages,
    now,
    send_at,
    send_due,
    sender_at,
    set_store,
)
from tests.support import shopify


@pytest.fixture
def fake() -> FakeChannel:
    return FakeChannel()


@pytest.fixture
def rt(database_url: str, tmp_path: Path, fake: FakeChannel) -> Iterator[Runtime]:
    yield from loop_runtime(database_url, tmp_path, fake)


@pytest.fixture
def client(rt: Runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime=rt).test_client()


def deliver(rt: Runtime, client, name: str, **changes: object) -> None:  # type: ignore[no-untyped-def]
    payload = shopify.load(name)
    payload.update(changes)
    shopify.post(client, name, payload=payload)
    drain(rt)


def order_now(rt: Runtime, client, name: str = "orders_create") -> None:  # type: ignore[no-untyped-def]
    stamp = now().isoformat()
    payload = {**shopify.load("orders_create"), "created_at": stamp, "processed_at": stamp}
    shopify.post(client, name, payload=payload)  # orders_paid carries the same order as orders_create
    drain(rt)


def test_idle_checkout_with_contact_is_abandoned_and_planned(rt: Runtime, client) -> None:
    # Given a checkout with email, phone and SMS consent, total 132.47 (> 50)
    deliver(rt, client, "checkouts_update")
    # When the abandonment delay has passed, at 10:00 in the shopper's New York (so no step meets quiet hours)
    at = daytime()
    [cart_id] = abandon_all(rt, at)
    # Then the cart is abandoned, assigned to treatment, and four messages are planned
    assert cart(rt, cart_id).status == "abandoned" and cart(rt, cart_id).abandoned_at == at
    planned = messages(rt, cart_id)
    assert [(m.step, m.channel, m.template, m.status) for m in planned] == [
        (1, "email", "gentle_reminder", "planned"),
        (2, "email", "value_proposition", "planned"),
        (3, "sms", "offer", "planned"),
        (4, "email", "final_call", "planned"),
    ]
    first = (planned[0].due_at - at).total_seconds() / 3600
    assert 0.5 <= first <= 4  # the model's choice, inside the first-message window
    assert [(m.due_at - at) for m in planned[1:]] == [24 * HOUR, 48 * HOUR, 72 * HOUR]
    with rt.sessions() as session:
        assignment = session.scalars(select(t.ExperimentAssignment)).one()
    assert (assignment.cart_id, assignment.experiment, assignment.variant) == (cart_id, "holdout", "treatment")


def test_no_sms_step_without_consent_or_below_the_threshold(rt: Runtime, client) -> None:
    deliver(rt, client, "checkouts_create")  # no phone, no consent
    [cart_id] = abandon_all(rt)
    assert [m.channel for m in messages(rt, cart_id)] == ["email", "email", "email"]


def test_carts_without_contact_are_never_abandoned(rt: Runtime, client) -> None:
    deliver(rt, client, "checkouts_create__no_contact")
    assert abandon_all(rt) == []


def test_recent_activity_is_not_abandoned_yet(rt: Runtime, client) -> None:
    stamp = now().isoformat()
    deliver(rt, client, "checkouts_create", updated_at=stamp)
    assert abandon_all(rt, now() + timedelta(minutes=30)) == []
    assert len(abandon_all(rt, now() + 2 * HOUR)) == 1


def test_holdout_carts_get_no_message_but_are_tracked(rt: Runtime, client) -> None:
    set_store(rt, holdout_percent=100)
    deliver(rt, client, "checkouts_update")
    [cart_id] = abandon_all(rt)
    assert messages(rt, cart_id) == []
    order_now(rt, client)
    assert cart(rt, cart_id).status == "completed"  # tracked to the end, for the lift


def test_holdout_share_follows_the_setting(database_url: str, tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(database_url, tmp_path), channels={"email": FakeChannel()}, seed=11)
    add_store(runtime)
    set_store(runtime, holdout_percent=30)
    with runtime.sessions.begin() as session:
        store = session.scalars(select(t.Store)).one()
        for i in range(400):
            session.add(t.Cart(store_id=store.id, email=f"s{i}@example.com", currency="USD", subtotal=Decimal("10"),
                               total=Decimal("10"), line_items=[], status="active", platform_updated_at=now(),
                               last_activity_at=now(), abandon_at=now(), checkout_token=f"tok{i}"))
    abandon_all(runtime)
    with runtime.sessions() as session:
        variants = list(session.scalars(select(t.ExperimentAssignment.variant)))
    runtime.close()
    assert len(variants) == 400 and 90 <= variants.count("holdout") <= 150  # 120 expected


def test_sends_when_due_with_items_prices_and_links(rt: Runtime, client, fake: FakeChannel) -> None:
    deliver(rt, client, "checkouts_update")
    at = now() + 2 * HOUR
    abandon_all(rt, at)
    assert send_due(rt, at) == []  # nothing due yet
    assert send_due(rt, at + 5 * HOUR) == ["sent"]
    [email] = fake.sent
    assert isinstance(email, OutboundEmail) and email.to == "maren.holloway@example.com" and email.step == 1
    assert "$49.90" in email.text and "Waxed Canvas Tote" in email.html
    assert f"{rt.settings.app_url}/r/" in email.text and email.unsubscribe_url.startswith(f"{rt.settings.app_url}/u/")
    [first, *rest] = messages(rt)
    assert (first.status, first.attempts, first.sent_at is not None) == ("sent", 1, True)
    assert {m.status for m in rest} == {"planned"}


def test_the_same_step_is_never_sent_twice(rt: Runtime, client, fake: FakeChannel) -> None:
    deliver(rt, client, "checkouts_update")
    at = now() + 2 * HOUR
    abandon_all(rt, at)
    [claimed] = claim(rt, at + 5 * HOUR)
    # The job is delivered twice (broker redelivery) and the dispatcher's sweep re-enqueues it too
    assert rt.sender.send(rt.sessions, claimed) == "sent"
    assert rt.sender.send(rt.sessions, claimed) == "nothing to do"
    with rt.sessions.begin() as session:
        assert dispatch.claim_due(session, at + 5 * HOUR) == []
        assert dispatch.requeue_lost(session, at + 5 * HOUR, timedelta(0)) == []
    assert len(fake.sent) == 1


def test_an_order_stops_everything_pending_for_the_shopper(rt: Runtime, client, fake: FakeChannel) -> None:
    deliver(rt, client, "checkouts_update")
    at = now() + 2 * HOUR
    [cart_id] = abandon_all(rt, at)
    send_due(rt, at + 5 * HOUR)
    order_now(rt, client)
    assert [m.status for m in messages(rt, cart_id)] == ["sent", "cancelled", "cancelled", "cancelled"]
    assert {m.reason for m in messages(rt, cart_id)[1:]} == {"shopper ordered"}
    assert send_due(rt, at + 100 * HOUR) == []
    assert len(fake.sent) == 1
    assert cart(rt, cart_id).status == "recovered"


def test_order_before_the_first_send_means_nothing_is_ever_sent(rt: Runtime, client, fake: FakeChannel) -> None:
    deliver(rt, client, "checkouts_update")
    at = now() + 2 * HOUR
    abandon_all(rt, at)
    order_now(rt, client)
    assert send_due(rt, at + 100 * HOUR) == []
    assert fake.sent == [] and cart(rt, messages(rt)[0].cart_id).status == "completed"


def test_claimed_message_is_cancelled_when_the_order_lands_before_the_job_runs(rt: Runtime, client, fake: FakeChannel) -> None:
    deliver(rt, client, "checkouts_update")
    at = now() + 2 * HOUR
    abandon_all(rt, at)
    [claimed] = claim(rt, at + 5 * HOUR)
    order_now(rt, client)  # lands while the send job is still in the queue
    assert rt.sender.send(rt.sessions, claimed) == "nothing to do"
    assert fake.sent == []
    assert (messages(rt)[0].status, messages(rt)[0].reason) == ("cancelled", "shopper ordered")


def test_send_job_rechecks_the_cart_even_if_nothing_cancelled_it(rt: Runtime, client, fake: FakeChannel) -> None:
    deliver(rt, client, "checkouts_update")
    at = now() + 2 * HOUR
    [cart_id] = abandon_all(rt, at)
    [claimed] = claim(rt, at + 5 * HOUR)
    with rt.sessions.begin() as session:  # e.g. completed through reconciliation, not an order webhook
        session.get(t.Cart, cart_id).status = "completed"  # type: ignore[union-attr]
    assert rt.sender.send(rt.sessions, claimed) == "cancelled: cart is completed"
    assert fake.sent == []


def test_an_order_on_another_cart_of_the_same_shopper_blocks_the_send(rt: Runtime, client, fake: FakeChannel) -> None:
    deliver(rt, client, "checkouts_update")
    at = now() + 2 * HOUR
    abandon_all(rt, at)
    payload = shopify.load("orders_create")
    stamp = now().isoformat()
    payload.update(checkout_token="another-checkout", cart_token=None, id=999, created_at=stamp, processed_at=stamp)
    shopify.post(client, "orders_create", payload=payload)
    drain(rt)
    assert send_due(rt, at + 5 * HOUR) == [] and fake.sent == []


def test_returning_shopper_cancels_pending_and_sent_steps_never_repeat(rt: Runtime, client, fake: FakeChannel) -> None:
    deliver(rt, client, "checkouts_update")
    at = now() + 2 * HOUR
    [cart_id] = abandon_all(rt, at)
    send_due(rt, at + 5 * HOUR)
    # The shopper comes back and changes the cart
    deliver(rt, client, "checkouts_update", updated_at=(at + 6 * HOUR).isoformat())
    assert cart(rt, cart_id).status == "active"
    assert [m.status for m in messages(rt, cart_id)] == ["sent", "cancelled", "cancelled", "cancelled"]
    # and leaves again: the sequence restarts without the step already sent
    back = daytime(8, after=at + 9 * HOUR)  # steps at +24/48/72 h land in the day (SMS quiet hours, 48 h SMS window)
    abandon_all(rt, back)
    assert [m.status for m in messages(rt, cart_id)] == ["sent", "planned", "planned", "planned"]
    for hours in (24, 48, 72):  # each when due: one message per shopper per 16 h
        send_at(rt, back + hours * HOUR)
    assert sorted(m.step for m in fake.sent) == [1, 2, 3, 4]


def test_a_newer_cart_supersedes_the_shoppers_older_sequence(rt: Runtime, client) -> None:
    deliver(rt, client, "checkouts_update")
    [older] = abandon_all(rt, now() + 2 * HOUR)
    newer_payload = shopify.load("checkouts_update")
    newer_payload.update(id=1, token="newer-token", cart_token="newer-cart")
    shopify.post(client, "checkouts_update", payload=newer_payload)
    drain(rt)
    [newer] = abandon_all(rt, now() + 3 * HOUR)
    assert {m.status for m in messages(rt, older)} == {"cancelled"}
    assert {m.reason for m in messages(rt, older)} == {"superseded by a newer cart"}
    assert {m.status for m in messages(rt, newer)} == {"planned"}


def test_suppressed_address_and_withdrawn_sms_consent_cancel_with_reasons(rt: Runtime, client, fake: FakeChannel) -> None:
    deliver(rt, client, "checkouts_update")
    at = now() + 2 * HOUR
    [cart_id] = abandon_all(rt, at)
    with rt.sessions.begin() as session:
        store = session.scalars(select(t.Store)).one()
        session.add(t.Suppression(store_id=store.id, channel="email", address="maren.holloway@example.com", reason="bounce"))
        found = session.get(t.Cart, cart_id)
        found.accepts_sms = False  # type: ignore[union-attr]
        customer = session.scalars(select(t.Customer)).one()
        customer.sms_consent = False
    send_due(rt, at + 200 * HOUR)
    assert fake.sent == []
    assert [(m.status, m.reason) for m in messages(rt, cart_id)] == [
        ("cancelled", "address suppressed"), ("cancelled", "address suppressed"),
        ("cancelled", "no SMS consent"), ("cancelled", "address suppressed"),
    ]


def test_no_email_leaves_without_the_stores_postal_address(rt: Runtime, client, fake: FakeChannel) -> None:
    # CAN-SPAM: a commercial email must carry a valid postal address; the SMS step does not need one.
    set_store(rt, postal_address="")
    deliver(rt, client, "checkouts_update")
    at = daytime(10)
    [cart_id] = abandon_all(rt, at)
    send_due(rt, at + 200 * HOUR)
    assert {(m.channel, m.reason) for m in messages(rt, cart_id) if m.channel == "email"} == {
        ("email", "missing_postal_address")
    }
    assert all(isinstance(m, OutboundSms) for m in fake.sent)


def test_sms_step_goes_out_as_sms(rt: Runtime, client, fake: FakeChannel) -> None:
    deliver(rt, client, "checkouts_update")
    at = daytime(10)  # the SMS step, 48 h later, is inside the shopper's legal hours
    abandon_all(rt, at)
    with rt.sessions.begin() as session:  # only the SMS step is left
        for m in session.scalars(select(t.RecoveryMessage).where(t.RecoveryMessage.channel == "email")):
            m.status = "cancelled"
    send_at(rt, at + 48 * HOUR)
    [sms] = fake.sent
    assert isinstance(sms, OutboundSms) and sms.to == "+18285550147" and "STOP" in sms.body


def test_crash_mid_send_is_visible_and_never_resent(rt: Runtime, client, fake: FakeChannel) -> None:
    deliver(rt, client, "checkouts_update")
    at = now() + 2 * HOUR
    abandon_all(rt, at)
    [claimed] = claim(rt, at + 5 * HOUR)
    with rt.sessions.begin() as session:
        row = session.get(t.RecoveryMessage, claimed)
        row.status, row.claimed_at = "sending", now() - HOUR  # type: ignore[union-attr]  # the worker died here
    with rt.sessions.begin() as session:
        assert dispatch.fail_interrupted(session, now(), timedelta(minutes=10)) == 1
    assert rt.sender.send(rt.sessions, claimed) == "nothing to do"
    row = messages(rt)[0]
    assert (row.status, row.reason) == ("failed", "interrupted mid-send; not resent to avoid a duplicate")


@pytest.mark.parametrize("hours_after_send, attribution", [(1, "recovered"), (24 * 6, "completed")])
def test_attribution_window(rt: Runtime, client, hours_after_send: int, attribution: str) -> None:
    deliver(rt, client, "checkouts_update")
    at = now() + 2 * HOUR
    [cart_id] = abandon_all(rt, at)
    send_due(rt, at + 5 * HOUR)
    sent_at = messages(rt, cart_id)[0].sent_at
    stamp = (sent_at + hours_after_send * HOUR).isoformat()  # type: ignore[operator]
    deliver(rt, client, "orders_create", created_at=stamp, processed_at=stamp)
    with rt.sessions() as session:
        order = session.scalars(select(t.Order)).one()
    assert (order.attribution, cart(rt, cart_id).status) == (attribution, attribution)
    assert order.total == Decimal("132.47") and order.currency == "USD"


def test_two_dispatchers_never_claim_the_same_row(rt: Runtime, client) -> None:
    with rt.sessions.begin() as session:
        store = session.scalars(select(t.Store)).one()
        for i in range(60):
            c = t.Cart(store_id=store.id, email=f"s{i}@example.com", currency="USD", subtotal=Decimal("10"),
                       total=Decimal("10"), line_items=[], status="abandoned", platform_updated_at=now(),
                       last_activity_at=now(), abandoned_at=now(), checkout_token=f"tok{i}")
            session.add(c)
            session.flush()
            session.add(t.RecoveryMessage(store_id=store.id, cart_id=c.id, step=1, channel="email",
                                          template="gentle_reminder", due_at=now(), status="planned", attempts=0))
    first, second = rt.sessions(), rt.sessions()
    first.begin()
    a = dispatch.claim_due(first, now(), limit=40)
    if rt.engine.dialect.name == "postgresql":  # SQLite serializes whole transactions instead
        second.begin()
        b = dispatch.claim_due(second, now(), limit=40)
        second.commit()
    first.commit()
    if rt.engine.dialect.name != "postgresql":
        second.begin()
        b = dispatch.claim_due(second, now(), limit=40)
        second.commit()
    first.close()
    second.close()
    assert len(a) == 40 and len(b) == 20 and not set(a) & set(b)


def test_missing_model_falls_back_to_a_fixed_time(rt: Runtime, client, caplog) -> None:  # type: ignore[no-untyped-def]
    deliver(rt, client, "checkouts_update")
    at = now() + 2 * HOUR
    abandon_all(rt, at)
    assert messages(rt)[0].due_at - at == HOUR  # FixedSendTime(1 h): no model under tmp var/model
    assert "send_time.onnx" in caplog.text


def _abandon_one_with(database_url: str, tmp_path: Path, model_dir: Path):  # type: ignore[no-untyped-def]
    runtime = build_runtime(make_settings(database_url, tmp_path, model_dir=model_dir), channels={"email": FakeChannel()}, seed=1)
    add_store(runtime)
    set_store(runtime, holdout_percent=0, first_message_min=3600, first_message_max=3 * 3600)
    shopify.post(create_app(runtime=runtime).test_client(), "checkouts_update")
    drain(runtime)
    at = now() + 2 * HOUR
    abandon_all(runtime, at)
    return runtime, at


def test_a_model_not_promoted_off_policy_is_not_served(database_url: str, tmp_path: Path, trained_model_dir: Path) -> None:
    # Given a trained model that no off-policy evaluation has promoted
    from ml.inference import promoted

    assert not promoted(json.loads((trained_model_dir / "send_time.json").read_text()))
    runtime, at = _abandon_one_with(database_url, tmp_path, trained_model_dir)
    got = messages(runtime)[0].due_at - at
    with runtime.sessions() as session:
        decision = session.scalars(select(t.SendDecision)).one()
    runtime.close()
    # Then the store's fixed delay (1 h) is what is served, and the log says so
    assert got == HOUR and (decision.policy, decision.model_version, decision.chosen) == ("fixed", "fixed", 1.0)


def test_promoted_model_picks_its_best_offset_in_the_window(database_url: str, tmp_path: Path, trained_model_dir: Path) -> None:
    from ml.inference import send_time_model
    from ml.train import record_promotion
    from recovery.sequence.abandonment import cart_features

    model_dir = tmp_path / "model"
    shutil.copytree(trained_model_dir, model_dir)
    record_promotion(model_dir, {"promoted": True, "reason": "test"})
    runtime, at = _abandon_one_with(database_url, tmp_path, model_dir)
    with runtime.sessions() as session:
        c = session.scalars(select(t.Cart)).one()
        store = session.scalars(select(t.Store)).one()
        features = cart_features(c, session.get(t.Customer, c.customer_id), store)
        decision = session.scalars(select(t.SendDecision)).one()
    offsets = [1 + 0.25 * i for i in range(9)]
    scorer = send_time_model(model_dir / "send_time.onnx")
    expected = scorer.best_offset(features, offsets)
    got = (messages(runtime)[0].due_at - at).total_seconds() / 3600
    runtime.close()
    assert got == pytest.approx(expected) and 1 <= got <= 3
    assert (decision.policy, decision.model_version, decision.candidates) == ("model", scorer.version, offsets)


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ml.train import train

    out = tmp_path_factory.mktemp("model")
    train(out, n_samples=3000, seed=5)
    return out


def test_outbox_files_appear_for_each_channel(database_url: str, tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(database_url, tmp_path))  # no provider keys: the local outbox
    add_store(runtime)
    set_store(runtime, holdout_percent=0)
    shopify.post(create_app(runtime=runtime).test_client(), "checkouts_update")
    drain(runtime)
    at = daytime(10)
    abandon_all(runtime, at)
    for hours in (5, 24, 48, 72):  # each step when due (caps: one message per shopper per 16 h)
        send_at(runtime, at + hours * HOUR)
    runtime.close()
    outbox = tmp_path / "outbox"
    assert sorted(p.name for p in (outbox / "email").iterdir()) == ["1-step1.eml", "2-step2.eml", "4-step4.eml"]
    sms = json.loads((outbox / "sms" / "3-step3.json").read_text())
    assert (sms["to"], sms["cart_id"], sms["step"]) == ("+18285550147", 1, 3)


def test_two_carts_of_one_shopper_abandoned_together_run_one_sequence(rt: Runtime, client) -> None:
    # Given the same shopper left two checkouts, the second ten minutes after the first
    first = shopify.load("checkouts_update")
    second = {**first, "id": 2, "token": "second-token", "cart_token": "second-cart",
              "updated_at": "2026-09-14T14:52:10-04:00"}
    shopify.post(client, "checkouts_update", payload=first)
    shopify.post(client, "checkouts_update", payload=second)
    drain(rt)
    # When both are abandoned in the same pass
    abandoned = abandon_all(rt)
    # Then only the newer cart has a sequence
    assert len(abandoned) == 2
    with rt.sessions() as session:
        newer = session.scalars(select(t.Cart).where(t.Cart.checkout_token == "second-token")).one()
    assert {m.cart_id for m in messages(rt)} == {newer.id}


@pytest.mark.parametrize("error, status", [(PermanentSendError("550 no such mailbox"), "failed"),
                                           (TransientSendError("503 try later"), "queued")])
def test_provider_errors_are_recorded_and_only_transient_ones_retried(
    rt: Runtime, client, fake: FakeChannel, error: Exception, status: str
) -> None:
    deliver(rt, client, "checkouts_update")
    at = now() + 2 * HOUR
    abandon_all(rt, at)
    [claimed] = claim(rt, at + 5 * HOUR)
    fake.fail_with = error
    if isinstance(error, TransientSendError):
        with pytest.raises(TransientSendError):  # raised to the job, whose retry policy backs off
            rt.sender.send(rt.sessions, claimed)
    else:
        assert rt.sender.send(rt.sessions, claimed) == "failed: provider refused"
    row = messages(rt)[0]
    assert (row.status, row.attempts, row.sent_at) == (status, 1, None)
    assert str(error) in (row.reason or "")
    if status == "queued":  # the retry sends it once the provider is back
        fake.fail_with = None
        assert rt.sender.send(rt.sessions, claimed) == "sent" and messages(rt)[0].attempts == 2


def test_a_cancelled_recovered_order_no_longer_counts(rt: Runtime, client) -> None:
    from recovery.measure.analytics import summarize

    deliver(rt, client, "checkouts_update")
    at = now() + 2 * HOUR
    [cart_id] = abandon_all(rt, at)
    send_due(rt, at + 5 * HOUR)
    order_now(rt, client)
    with rt.sessions() as session:
        assert summarize(session).recovered_carts == 1
    # orders/paid for the same order changes nothing; orders/cancelled takes the recovery back
    order_now(rt, client, "orders_paid")
    cancelled = {**shopify.load("orders_create"), "cancelled_at": now().isoformat(), "cancel_reason": "customer"}
    shopify.post(client, "orders_cancelled", payload=cancelled)
    drain(rt)
    with rt.sessions() as session:
        order = session.scalars(select(t.Order)).one()
        summary = summarize(session)
    assert order.cancelled_at is not None and (summary.recovered_carts, summary.recovered_revenue) == (0, {})
    assert (cart(rt, cart_id).status, cart(rt, cart_id).recovered_at) == ("abandoned", None)
    assert summary.treated.ordered == 0


def test_consent_withdrawn_on_the_platform_cancels_pending_messages(rt: Runtime, client, fake: FakeChannel) -> None:
    deliver(rt, client, "checkouts_update")  # email and SMS consent ticked at checkout
    at = now() + 2 * HOUR
    [cart_id] = abandon_all(rt, at)
    shopify.post(client, "customers_update__unsubscribed")
    drain(rt)
    assert {(m.status, m.reason) for m in messages(rt, cart_id)} == {("cancelled", "consent withdrawn")}
    with rt.sessions() as session:
        customer = session.scalars(select(t.Customer)).one()
        suppressed = sorted(session.scalars(select(t.Suppression.channel)))
    assert (customer.email_consent, customer.sms_consent, customer.sms_consent_source) == (False, False, "platform")
    assert suppressed == ["email", "sms"] and cart(rt, cart_id).accepts_sms is False
    assert send_due(rt, at + 200 * HOUR) == [] and fake.sent == []


def test_opting_in_again_on_the_platform_lifts_only_that_suppression(rt: Runtime, client) -> None:
    deliver(rt, client, "checkouts_update")
    shopify.post(client, "customers_update__unsubscribed")
    drain(rt)
    with rt.sessions.begin() as session:  # the shopper also used our one-click unsubscribe for email
        session.execute(t.Suppression.__table__.update().where(t.Suppression.channel == "email").values(reason="unsubscribed"))
    again = shopify.load("customers_update__unsubscribed")
    again["email_marketing_consent"]["state"] = again["sms_marketing_consent"]["state"] = "subscribed"
    again["updated_at"] = "2026-09-21T09:00:00-04:00"
    shopify.post(client, "customers_update", payload=again)
    drain(rt)
    with rt.sessions() as session:
        left = [(s.channel, s.reason) for s in session.scalars(select(t.Suppression))]
        customer = session.scalars(select(t.Customer)).one()
    assert left == [("email", "unsubscribed")]  # our own unsubscribe stands
    assert (customer.email_consent, customer.sms_consent) == (True, True)


def test_a_stale_consent_delivery_never_overrides_a_newer_one(rt: Runtime, client) -> None:
    deliver(rt, client, "checkouts_update")
    shopify.post(client, "customers_update__unsubscribed")  # withdrawn at 2026-09-20 09:15
    drain(rt)
    older = shopify.load("customers_update__unsubscribed")
    older["email_marketing_consent"]["state"] = "subscribed"
    older["updated_at"] = "2026-09-19T09:00:00-04:00"  # a retry of an older state
    shopify.post(client, "customers_update", payload=older)
    drain(rt)
    with rt.sessions() as session:
        assert session.scalars(select(t.Customer.email_consent)).one() is False


def test_an_email_outage_does_not_hold_up_sms_in_the_same_batch(database_url: str, tmp_path: Path) -> None:
    email, sms = FakeChannel(TransientSendError("503 try later")), FakeChannel()
    rt = build_runtime(make_settings(database_url, tmp_path), channels={"email": email, "sms": sms, "push": sms}, seed=3)
    try:
        add_store(rt)
        set_store(rt, holdout_percent=0, shopper_cap="off")
        deliver(rt, create_app(runtime=rt).test_client(), "checkouts_update")
        at = daytime(10)
        [cart_id] = abandon_all(rt, at)
        due = at + 48 * HOUR + HOUR / 60  # steps 1-3 due: email, email, SMS (still inside its 48 h limit + lag)
        claimed = claim(rt, due)
        assert len(claimed) == 3
        sender = sender_at(rt, due)  # on the wall clock, SMS quiet hours depend on when the test runs
        with pytest.raises(TransientSendError):  # the job still retries the email
            sender.send_batch(rt.sessions, claimed)
        rows = {m.channel + str(m.step): m for m in messages(rt, cart_id)}
        assert rows["sms3"].status == "sent" and len(sms.sent) == 1
        # the first email was tried once; the second was not tried against a provider known to be down
        assert (rows["email1"].status, rows["email1"].attempts) == ("queued", 1)
        assert (rows["email2"].status, rows["email2"].attempts) == ("queued", 0)
        email.fail_with = None
        sender.send_batch(rt.sessions, claimed)
        assert [m.step for m in email.sent] == [1, 2] and len(sms.sent) == 1
    finally:
        rt.close()
