"""Generated subject lines: OpenAI faked at the HTTP boundary; guardrails, fallbacks, cache, timeouts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from app import create_app
from app.runtime import build_runtime
from recovery.sending.channels import FakeChannel, OutboundEmail
from recovery.messages.content import ItemView, MessageContext
from recovery.config.settings import Settings
from recovery.messages.subjects import SubjectWriter, subject_writer
from tests.conftest import add_store, drain, make_settings
from tests.loop_helpers import HOUR, abandon_all, now, send_due, set_store
from tests.support import shopify
from tests.support.openai_fake import RATE_LIMITED, SERVER_ERROR, FakeOpenAI, completion, fake_openai

FALLBACK = "Jo, did you mean to leave these behind?"
MUG = ItemView("Enamel Camp Mug", "Cream", 1, Decimal("18.00"))


def context(*items: ItemView, **changes: object) -> MessageContext:
    ctx = MessageContext(
        store_name="Lindenhof Ceramics",
        store_url="https://lindenhof-ceramics.myshopify.com",
        postal_address="12 Example Lane, Sampletown 12345",
        first_name="Jo",
        locale="en-US",
        currency="USD",
        items=items or (MUG,),
        total=Decimal("18.00"),
        restore_url="https://app.example.com/r/tok",
        unsubscribe_url="https://app.example.com/u/tok",
        open_pixel_url=None,
    )
    return replace(ctx, **changes)


@pytest.fixture
def openai() -> Iterator[FakeOpenAI]:
    with fake_openai() as fake:
        yield fake


def writer(fake: FakeOpenAI, **kw: object) -> SubjectWriter:
    return SubjectWriter("sk-test-key", base_url=fake.base_url, **{"timeout": 2.0, "cooldown": 0.0, **kw})  # type: ignore[arg-type]


def test_a_good_answer_is_used_and_the_request_has_the_real_shape(openai: FakeOpenAI) -> None:
    # Given the API answers with a fitting line (in quotes, as models sometimes do)
    openai.answer('"Your Enamel Camp Mug is waiting at Lindenhof Ceramics"')
    # When a subject is asked for
    subject = writer(openai, model="gpt-4o-mini").subject("gentle_reminder", context(), FALLBACK)
    # Then the generated line is used, unquoted
    assert subject == "Your Enamel Camp Mug is waiting at Lindenhof Ceramics"
    # And the request was a chat completion with our key, and carried facts but nothing personal
    [request] = openai.requests
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-test-key"
    body = request["json"]
    assert body["model"] == "gpt-4o-mini" and [m["role"] for m in body["messages"]] == ["system", "user"]
    facts = json.loads(body["messages"][1]["content"])
    assert facts["store"] == "Lindenhof Ceramics" and facts["items"] == ["Enamel Camp Mug"]
    assert facts["offer_percent"] is None and facts["low_stock"] == [] and facts["price_drops"] == []
    assert "Jo" not in json.dumps(body) and "example.com/r/" not in json.dumps(body)


@pytest.mark.parametrize(
    "answer, why",
    [
        ("Your cart is WAITING for you", "all caps"),
        ("10% off the cart you left at Lindenhof Ceramics", "discount without an offer"),
        ("Use code THANKS for a little something", "code without an offer"),
        ("Only a few Enamel Camp Mugs left", "scarcity without a low-stock fact"),
        ("Only 2 left: your Enamel Camp Mug", "scarcity and a number not in the facts"),
        ("Good news: the Enamel Camp Mug is now cheaper", "price drop that was not recorded"),
        ("Your 3 items are still in your cart", "a number not in the facts"),
        ("Hurry, your cart at Lindenhof Ceramics expires soon", "invented deadline"),
        ("Your cart is saved for 24 hours", "countdown"),
        ("Free shipping on your Enamel Camp Mug today", "unbacked promise"),
        ("A friendly reminder from Lindenhof Ceramics about the Enamel Camp Mug you left", "too long"),
        ("Your cart\nis waiting", "two lines"),
        ("", "empty"),
    ],
)
def test_a_line_failing_a_guardrail_falls_back_to_the_deterministic_one(
    openai: FakeOpenAI, answer: str, why: str
) -> None:
    openai.answer(answer)
    assert writer(openai).subject("gentle_reminder", context(), FALLBACK) == FALLBACK, why


@pytest.mark.parametrize(
    "template, ctx, answer",
    [
        ("offer", context(offer_code="SAVE15", offer_percent=15), "15% off the Enamel Camp Mug you left"),
        (
            "final_call",
            context(replace(MUG, stock_left=3)),
            "Only 3 left of the Enamel Camp Mug in your cart",
        ),
        (
            "value_proposition",
            context(replace(MUG, unit_price=Decimal("14.50"), previous_unit_price=Decimal("18.00"))),
            "The Enamel Camp Mug in your cart is now $14.50",
        ),
        ("gentle_reminder", context(store_name="HOLM Ceramics"), "HOLM Ceramics saved your cart for you"),
        (
            "gentle_reminder",
            context(locale="de-DE", currency="EUR"),
            "Ihr Warenkorb bei Lindenhof Ceramics wartet",
        ),
    ],
)
def test_claims_backed_by_the_facts_pass(
    openai: FakeOpenAI, template: str, ctx: MessageContext, answer: str
) -> None:
    openai.answer(answer)
    assert writer(openai).subject(template, ctx, FALLBACK) == answer
    facts = json.loads(openai.requests[0]["json"]["messages"][1]["content"])
    assert facts["language"] == ctx.locale[:2]


@pytest.mark.parametrize(
    "reply",
    [
        RATE_LIMITED,
        SERVER_ERROR,
        (503, "upstream connect error"),
        (200, "not json"),
        (200, {"choices": []}),
        (200, {"error": {"message": "x"}}),
    ],
    ids=["429", "500", "503", "not-json", "no-choices", "no-content"],
)
def test_api_errors_fall_back_and_are_not_cached(openai: FakeOpenAI, reply: tuple[int, object]) -> None:
    # Given the API fails once, then answers
    openai.replies.append(reply)
    openai.answer("Your Enamel Camp Mug is still in your cart")
    subjects = writer(openai)
    # Then the failure gives the deterministic line, and the next send tries again and gets the generated one
    assert subjects.subject("gentle_reminder", context(), FALLBACK) == FALLBACK
    assert (
        subjects.subject("gentle_reminder", context(), FALLBACK)
        == "Your Enamel Camp Mug is still in your cart"
    )
    assert len(openai.requests) == 2


def test_a_slow_api_times_out_to_the_fallback(openai: FakeOpenAI) -> None:
    openai.replies.append(("sleep", 1.5, completion("Your Enamel Camp Mug is waiting")))
    assert writer(openai, timeout=0.3).subject("gentle_reminder", context(), FALLBACK) == FALLBACK


def test_after_a_failure_the_api_is_left_alone_for_the_cooldown(openai: FakeOpenAI) -> None:
    openai.replies.append(SERVER_ERROR)
    subjects = writer(openai, cooldown=60.0)
    assert subjects.subject("gentle_reminder", context(), FALLBACK) == FALLBACK
    assert subjects.subject("final_call", context(), "Your cart is still saved") == "Your cart is still saved"
    assert len(openai.requests) == 1  # sends during an outage do not each wait for a timeout


def test_same_facts_hit_the_cache_without_a_second_call(openai: FakeOpenAI) -> None:
    openai.answer(
        "Your Enamel Camp Mug is waiting", "Still thinking about the Enamel Camp Mug?", "CAPS ANSWER"
    )
    subjects = writer(openai)
    first = subjects.subject("gentle_reminder", context(), FALLBACK)
    # Another shopper with the same cart facts (a different name is not a fact we send)
    again = subjects.subject(
        "gentle_reminder", context(first_name="Sam"), "Sam, did you mean to leave these behind?"
    )
    assert first == again == "Your Enamel Camp Mug is waiting" and len(openai.requests) == 1
    # Other facts (another template) make a new call
    assert (
        subjects.subject("value_proposition", context(), "x") == "Still thinking about the Enamel Camp Mug?"
    )
    # A rejected answer is cached as "use the fallback": the same facts never pay for a second rejection
    assert subjects.subject("final_call", context(), "Last reminder") == "Last reminder"
    assert subjects.subject("final_call", context(), "Last reminder") == "Last reminder"
    assert len(openai.requests) == 3


def test_no_key_no_writer(tmp_path: Path) -> None:
    assert subject_writer(Settings(database_url="sqlite://")) is None
    settings = Settings.from_env(
        {
            "OPENAI_API_KEY": "sk-x",
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1/",
            "CARTRESQ_OPENAI_TIMEOUT": "1.5",
            "CARTRESQ_VAR_DIR": str(tmp_path),
        }
    )
    assert (settings.openai_base_url, settings.openai_timeout) == ("http://127.0.0.1:9/v1", 1.5)
    assert subject_writer(settings) is not None


def test_the_send_path_uses_the_generated_subject(
    openai: FakeOpenAI, database_url: str, tmp_path: Path
) -> None:
    # Given a runtime configured with an OpenAI key and the fake's base URL
    fake = FakeChannel()
    settings = make_settings(
        database_url, tmp_path, openai_api_key="sk-test-key", openai_base_url=openai.base_url
    )
    rt = build_runtime(settings, channels={"email": fake, "sms": fake, "push": fake})
    try:
        add_store(rt)
        set_store(rt, holdout_percent=0, sender_name="Velvet Fern")
        client = create_app(runtime=rt).test_client()
        shopify.post(client, "checkouts_update")
        drain(rt)
        openai.answer("Your Waxed Canvas Tote is still waiting at Velvet Fern")
        at = now() + 2 * HOUR
        abandon_all(rt, at)
        # When the first reminder goes out / Then its subject is the generated line
        assert send_due(rt, at + 5 * HOUR) == ["sent"]
        [email] = fake.sent
        assert isinstance(email, OutboundEmail)
        assert email.subject == "Your Waxed Canvas Tote is still waiting at Velvet Fern"
        assert "maren" not in json.dumps(openai.requests).lower()
    finally:
        rt.close()
