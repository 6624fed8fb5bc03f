"""The merchant app's Performance and Carts pages: scoped to one store, searchable, filterable, keyset-paged,
and the funnel equal to a direct count of the seeded rows."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from app.web.merchant.reasons import words
from app.runtime import Runtime
from tests.conftest import add_store
from recovery.storage import tables as t

SHOP_A, SHOP_B = "amber-loom.myshopify.com", "birch-kiln.myshopify.com"
NOW = datetime.now(UTC).replace(microsecond=0)
STEPS = ((1, "email"), (2, "email"), (3, "sms"))


def seed(rt: Runtime, store_id: int, n: int, rng: random.Random, prefix: str) -> list[dict]:  # type: ignore[type-arg]
    """n abandoned carts over the last 10 days with messages at every stage, orders, holdout assignments;
    returns what was made, for counting directly."""
    made = []
    with rt.sessions.begin() as session:
        for i in range(n):
            abandoned = NOW - timedelta(days=rng.randrange(10), hours=rng.randrange(12), minutes=i)
            status = rng.choice(["abandoned", "abandoned", "recovered", "completed"])
            cart = t.Cart(store_id=store_id, email=f"{prefix}{i:03d}@example.com", currency="USD", subtotal=Decimal("40"),
                          total=Decimal("42.50"), status=status, platform_updated_at=abandoned - timedelta(hours=2),
                          last_activity_at=abandoned - timedelta(hours=1), abandoned_at=abandoned, checkout_token=f"{prefix}-tok-{i}",
                          recovered_at=abandoned + timedelta(hours=5) if status == "recovered" else None)  # fmt: skip
            session.add(cart)
            session.flush()
            variant = "holdout" if i % 5 == 0 else "treatment"
            session.add(t.ExperimentAssignment(store_id=store_id, cart_id=cart.id, experiment="holdout", variant=variant))
            messages = []
            if variant != "holdout":
                for step, channel in STEPS[: rng.randrange(1, 4)]:
                    stage = rng.randrange(5)  # 0 planned, 1 sent, 2 delivered, 3 opened, 4 clicked
                    sent = abandoned + timedelta(hours=step) if stage else None
                    m = t.RecoveryMessage(store_id=store_id, cart_id=cart.id, step=step, channel=channel, template="gentle_reminder",
                                          due_at=abandoned + timedelta(hours=step), status="sent" if stage else "cancelled",
                                          reason=None if stage else "no_email_consent_region_GB", sent_at=sent,
                                          delivery_status="delivered" if stage >= 2 else None,
                                          delivery_updated_at=sent if stage >= 2 else None,
                                          opened_at=sent if stage >= 3 else None, clicked_at=sent if stage >= 4 else None)  # fmt: skip
                    session.add(m)
                    messages.append(m)
            if status in ("recovered", "completed"):
                session.add(t.Order(store_id=store_id, platform_order_id=f"{prefix}{i}", cart_id=cart.id, name=f"#{prefix}{1000 + i}",
                                    currency="USD", total=Decimal("42.50"), placed_at=abandoned + timedelta(hours=5),
                                    attribution="recovered" if status == "recovered" else "completed"))  # fmt: skip
            made.append({"cart": cart, "variant": variant, "messages": messages})
        session.flush()
        return [{"id": m["cart"].id, "status": m["cart"].status, "variant": m["variant"], "email": m["cart"].email,
                 "last": m["cart"].last_activity_at, "abandoned": m["cart"].abandoned_at,
                 "messages": [(x.step, x.channel, x.sent_at, x.delivery_status, x.opened_at, x.clicked_at) for x in m["messages"]]}
                for m in made]  # fmt: skip


def range_args() -> str:
    return f"from={(NOW - timedelta(days=12)).date()}&to={(NOW + timedelta(days=1)).date()}"


def cells(html: str, step: int, channel: str) -> dict[str, int]:
    row = re.search(rf'<tr data-step="{step}" data-channel="{channel}">(.*?)</tr>', html, re.S)
    assert row, f"no funnel row for step {step} {channel}"
    return {k: int(v) for k, v in re.findall(r'data-stage="(\w+)">(\d+)', row.group(1))}


def test_the_funnel_equals_a_direct_count_of_the_rows(runtime: Runtime, self_hosted_client) -> None:
    a, b = add_store(runtime, SHOP_A), add_store(runtime, SHOP_B)
    rows = seed(runtime, a, 60, random.Random(7), "ana")
    seed(runtime, b, 30, random.Random(8), "bo")  # another store's figures must not leak in
    html = self_hosted_client.get(f"/app/performance?store={SHOP_A}&{range_args()}").get_data(as_text=True)
    for step, channel in STEPS:
        got = [m for r in rows for m in r["messages"] if (m[0], m[1]) == (step, channel)]
        recovered = {r["id"] for r in rows if r["status"] == "recovered"}
        ordered = sum(1 for r in rows if r["id"] in recovered for m in r["messages"] if (m[0], m[1]) == (step, channel) and m[2])
        expected = {"planned": len(got), "sent": sum(1 for m in got if m[2]), "delivered": sum(1 for m in got if m[3]),
                    "opened": sum(1 for m in got if m[4]), "clicked": sum(1 for m in got if m[5]), "ordered": ordered}  # fmt: skip
        assert cells(html, step, channel) == expected
    assert f'<dd id="abandoned">{len(rows)}</dd>' in html
    assert f'<dd id="recovered">{sum(r["status"] == "recovered" for r in rows)}</dd>' in html
    revenue = Decimal("42.50") * sum(r["status"] == "recovered" for r in rows)
    assert f"{revenue:,.2f} USD" in html
    holdout = [r for r in rows if r["variant"] == "holdout"]
    ordered_h = sum(r["status"] in ("recovered", "completed") for r in holdout)
    assert f"{ordered_h} of {len(holdout)}" in html and 'id="verdict"' in html
    assert html.count("<svg") == 2 and "Recovered revenue per day (USD)" in html and "<figcaption>" in html


def seed_price_drops(rt: Runtime, store_id: int, prefix: str, fired: datetime, n: int = 7) -> None:
    """A price drop fired for n shoppers: the first four treated (a message sent: opened+clicked, opened,
    sent, sent), the rest held out; the first treated and the first held-out shopper order an hour later."""
    from recovery.flows import FLOW_STEP_BASE

    with rt.sessions.begin() as session:
        for i in range(n):
            cart = t.Cart(store_id=store_id, email=f"{prefix}{i:03d}@example.com", currency="USD", subtotal=Decimal("40"),
                          total=Decimal("40"), status="abandoned", platform_updated_at=fired - timedelta(days=1),
                          last_activity_at=fired - timedelta(days=1), abandoned_at=fired - timedelta(days=1),
                          checkout_token=f"{prefix}-pd-{i}")  # fmt: skip
            session.add(cart)
            session.flush()
            event = t.FlowEvent(store_id=store_id, flow="price_drop", cart_id=cart.id, shopper=f"{prefix}-u{i}",
                                subject="v1", variant="treatment" if i < 4 else "holdout", fired_at=fired)
            session.add(event)
            session.flush()
            if i < 4:
                sent = fired + timedelta(minutes=1)
                session.add(t.RecoveryMessage(
                    store_id=store_id, cart_id=cart.id, step=FLOW_STEP_BASE + event.id, channel="email",
                    template="price_drop", due_at=sent, status="sent", sent_at=sent, flow="price_drop",
                    opened_at=sent if i < 2 else None, clicked_at=sent if i == 0 else None))  # fmt: skip
            if i in (0, 4):
                session.add(t.Order(store_id=store_id, platform_order_id=f"{prefix}pd{i}", cart_id=cart.id,
                                    name=f"#{prefix}pd{i}", currency="USD", total=Decimal("40"),
                                    placed_at=fired + timedelta(hours=1), attribution="recovered"))  # fmt: skip


def test_each_flows_line_counts_what_it_sent_and_fired_in_the_range(runtime: Runtime, self_hosted_client) -> None:
    a, b = add_store(runtime, SHOP_A), add_store(runtime, SHOP_B)
    seed_price_drops(runtime, a, "pd", NOW - timedelta(days=3))
    seed_price_drops(runtime, a, "old", NOW - timedelta(days=40), n=3)  # before the range: not counted
    seed_price_drops(runtime, a, "late", NOW + timedelta(days=3), n=2)  # after the range: not counted
    seed_price_drops(runtime, b, "bo", NOW - timedelta(days=3), n=2)  # another store's: not counted
    html = self_hosted_client.get(f"/app/performance?store={SHOP_A}&{range_args()}").get_data(as_text=True)
    row = re.search(r'<tr data-flow="price_drop">(.*?)</tr>', html, re.S)
    assert row, "no line for the price drop"
    counts = {k: int(v) for k, v in re.findall(r'data-stage="(\w+)">(\d+)', row.group(1))}
    assert counts == {"sent": 4, "opened": 2, "clicked": 1, "ordered": 1}
    assert "1 of 4 treated vs 1 of 3 holdout shoppers ordered" in row.group(1)
    assert re.search(r"[+-]\d+\.\d points \[[+-]\d+\.\d, [+-]\d+\.\d\]", row.group(1))
    assert "not yet significant" in row.group(1)  # 4 vs 3 shoppers: the interval spans zero
    cross = re.search(r'<tr data-flow="cross_sell">(.*?)</tr>', html, re.S)
    assert cross and "(off)" in cross.group(1) and "Nothing fired in this range" in cross.group(1)
    # Flow messages have their own lines: none appears in the cart sequence's funnel per step.
    assert not re.search(r'data-step="1\d\d\d', html)


def test_a_store_never_sees_another_stores_carts(runtime: Runtime, self_hosted_client) -> None:
    a, b = add_store(runtime, SHOP_A), add_store(runtime, SHOP_B)
    seed(runtime, a, 3, random.Random(1), "ana")
    theirs = seed(runtime, b, 3, random.Random(2), "bo")
    page = self_hosted_client.get(f"/app/carts?store={SHOP_A}").get_data(as_text=True)
    assert page.count("<tr data-cart=") == 3 and "b•••@example.com" not in page and "a•••@example.com" in page
    assert self_hosted_client.get(f"/app/carts/{theirs[0]['id']}?store={SHOP_A}").status_code == 404
    assert self_hosted_client.get(f"/app/carts/{theirs[0]['id']}?store={SHOP_B}").status_code == 200
    found = self_hosted_client.get(f"/app/carts?store={SHOP_A}&q=bo000@example.com").get_data(as_text=True)
    assert 'id="empty"' in found


def test_search_filters_and_keyset_pages(runtime: Runtime, self_hosted_client) -> None:
    a = add_store(runtime, SHOP_A)
    rows = seed(runtime, a, 120, random.Random(3), "cy")
    base = f"/app/carts?store={SHOP_A}"
    # every cart exactly once over the pages, newest activity first
    seen, url = [], base
    while url:
        html = self_hosted_client.get(url).get_data(as_text=True)
        seen += [int(x) for x in re.findall(r'<tr data-cart="(\d+)">', html)]
        nxt = re.search(r'id="next" href="([^"]+)"', html)
        url = nxt.group(1).replace("&amp;", "&") if nxt else ""
    expected = [r["id"] for r in sorted(rows, key=lambda r: (r["last"], r["id"]), reverse=True)]
    assert seen == expected and len(seen) == 120
    # search: email prefix, order name, cart id
    target = rows[17]
    for q in ("cy017@", "CY017@example.com", str(target["id"])):
        html = self_hosted_client.get(f"{base}&q={q}").get_data(as_text=True)
        assert re.findall(r'<tr data-cart="(\d+)">', html) == [str(target["id"])], q
    ordered = next(r for r in rows if r["status"] != "abandoned")
    i = rows.index(ordered)
    html = self_hosted_client.get(f"{base}&q=%23cy{1000 + i}").get_data(as_text=True)
    assert re.findall(r'<tr data-cart="(\d+)">', html) == [str(ordered["id"])]
    # filters: status, channel (sent by), date of last activity
    html = self_hosted_client.get(f"{base}&status=recovered").get_data(as_text=True)
    got = {int(x) for x in re.findall(r'<tr data-cart="(\d+)">', html)}
    assert got == {r["id"] for r in rows if r["status"] == "recovered"}
    sms = {r["id"] for r in rows if any(m[1] == "sms" and m[2] for m in r["messages"])}
    ids: set[int] = set()
    url = f"{base}&channel=sms"
    while url:
        html = self_hosted_client.get(url).get_data(as_text=True)
        ids |= {int(x) for x in re.findall(r'<tr data-cart="(\d+)">', html)}
        nxt = re.search(r'id="next" href="([^"]+)"', html)
        url = nxt.group(1).replace("&amp;", "&") if nxt else ""
    assert ids == sms
    day = rows[5]["last"].date()  # the store is on UTC
    html = self_hosted_client.get(f"{base}&from={day}&to={day}").get_data(as_text=True)
    assert {int(x) for x in re.findall(r'<tr data-cart="(\d+)">', html)} == {r["id"] for r in rows if r["last"].date() == day}


def test_bad_input_is_a_precise_400(runtime: Runtime, self_hosted_client) -> None:
    add_store(runtime, SHOP_A)
    for url in ("/app/performance?from=2026-13-01", "/app/performance?from=2026-05-03&to=2026-05-01",
                "/app/performance?from=2020-01-01&to=2026-01-01", "/app/carts?status=lost", "/app/carts?channel=fax",
                "/app/carts?after=not-a-cursor", "/app/carts?q=" + "x" * 400):  # fmt: skip
        assert self_hosted_client.get(url + f"&store={SHOP_A}").status_code == 400, url


def test_the_cart_page_tells_its_story_in_plain_words(runtime: Runtime, self_hosted_client) -> None:
    a = add_store(runtime, SHOP_A)
    seed(runtime, a, 12, random.Random(5), "dee")
    with runtime.sessions() as session:
        message = session.scalars(select(t.RecoveryMessage).where(t.RecoveryMessage.status == "cancelled")).first()
        assert message is not None
        cart_id = message.cart_id
    html = self_hosted_client.get(f"/app/carts/{cart_id}?store={SHOP_A}").get_data(as_text=True)
    assert "Not emailed: shoppers in the UK need marketing consent" in html
    assert "Abandoned" in html and "@example.com" in html and re.search(r"dee\d{3}@", html) is None  # masked


def test_reason_codes_in_words() -> None:
    assert words("no_email_consent_region_GB") == "Not emailed: shoppers in the UK need marketing consent"
    assert words("holdout").startswith("Not sent on purpose: this shopper is in the holdout group")
    assert words("bot:crawler_ua") == "Not sent: the cart looks automated (crawler ua)"
    assert words("provider refused: 550 no such mailbox") == "Not sent: the provider refused it (550 no such mailbox)"
    assert words("rescheduled: quiet_hours").startswith("Moved later. Waiting: it is night")
    assert words("something_new") == "Technical reason: something_new" and words(None) == ""


def test_flow_messages_and_reasons_are_named_not_coded(runtime: Runtime, self_hosted_client) -> None:
    # Given a cart with a cross-sell message (its step is a flow-event id) and a step moved by the frequency cap
    a = add_store(runtime, SHOP_A)
    with runtime.sessions.begin() as session:
        cart = t.Cart(store_id=a, email="flo@example.com", currency="USD", subtotal=Decimal("40"), total=Decimal("40"),
                      status="abandoned", platform_updated_at=NOW, last_activity_at=NOW, abandoned_at=NOW,
                      checkout_token="flo-tok")  # fmt: skip
        session.add(cart)
        session.flush()
        session.add(t.RecoveryMessage(store_id=a, cart_id=cart.id, step=1268, channel="email", template="cross_sell",
                                      flow="cross_sell", due_at=NOW, status="cancelled", reason="no_marketing_consent"))
        session.add(t.RecoveryMessage(store_id=a, cart_id=cart.id, step=1, channel="email", template="gentle_reminder",
                                      due_at=NOW, status="planned", reason="rescheduled: shopper_cap"))
        cart_id = cart.id
    # Then the cart page and the dashboard say the flow's name and the reason in words, never a code or an id
    page = self_hosted_client.get(f"/app/carts/{cart_id}?store={SHOP_A}").get_data(as_text=True)
    home = self_hosted_client.get("/").get_data(as_text=True)
    for html in (page, home):
        assert "Cross-sell (email)" in html and "1268" not in html
        assert "recommendations go only to shoppers who subscribed" in html
        assert "Moved later. Waiting: the shopper had a message recently" in html
        assert "no_marketing_consent" not in html and "shopper_cap" not in html and "Technical reason" not in html
