"""Subject lines written per context by an OpenAI chat model, held to the same honesty as our own lines.

A generated line is used only when it passes every guardrail: one line, at most MAX_LENGTH characters,
no shouting, and no claim the facts passed in do not back (a discount without an offer, "only N left"
without a low-stock fact, a price drop that was not recorded, a number that is not in the facts,
deadlines and countdowns never). Anything else — a guardrail rejection, 429, 5xx, a timeout, a
malformed answer — yields the deterministic line. No personal data is sent: the shopper's name is
not part of the facts, so one generated line serves every cart with the same facts (cached).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from babel.numbers import format_currency

from recovery.messages.content import LANGUAGES, MessageContext, _locale
from recovery.config.settings import Settings

log = logging.getLogger(__name__)

MAX_LENGTH = 70  # what most mail clients show before cutting; our own lines stay under it too
_LANGUAGE_NAMES = {"en": "English", "de": "German"}
_WORD = re.compile(r"[^\W\d_]+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
#: Claims allowed only with the fact that backs them (English and German wording).
_OFFER = re.compile(
    r"%|\bper ?cent\b|\bprozent\b|\boff\b|discount|\brabatt|\bsale\b|\bsave\b|\bsaving|coupon|gutschein"
    r"|\bcode\b|\bdeal\b",
    re.I,
)
_SCARCITY = re.compile(
    r"\bonly\b|\bfew\b|\bleft in stock\b|\b\d+ left\b|selling out|sold out|running out|low stock|\blimited\b"
    r"|\bnur noch\b|\bknapp\b|\bbegrenzt|ausverkauf|\bwenige\b",
    re.I,
)
_PRICE_DROP = re.compile(
    r"price drop|dropped|\breduced\b|lower price|cheaper|price cut|markdown|now just|now only"
    r"|günstiger|reduziert|gesenkt|preissenkung|preis gefallen",
    re.I,
)
#: Never true of a reminder: deadlines, countdowns, pressure, free shipping we know nothing about.
_NEVER = re.compile(
    r"\bhurry\b|\bexpir|\bends? (soon|today|tonight)\b|\btoday only\b|countdown|last chance|before it'?s gone"
    r"|\b\d+\s*(h|hrs?|hours?|min(ute)?s?|stunden?|minuten?)\b|\bbeeil|\bnur heute\b|letzte chance"
    r"|free shipping|versandkostenfrei|kostenloser versand|https?://|www\.|!!",
    re.I,
)


@dataclass(frozen=True)
class SubjectFacts:
    """Everything a generated subject may speak of; nothing personal."""

    template: str
    language: str
    store: str
    items: tuple[str, ...]
    offer_percent: int | None
    price_drops: tuple[tuple[str, str, str], ...]  # (title, now, was), formatted for the shopper
    low_stock: tuple[tuple[str, int], ...]  # (title, count)

    @classmethod
    def of(cls, template: str, ctx: MessageContext) -> SubjectFacts:
        loc = _locale(ctx.locale)
        money = lambda amount: format_currency(amount, ctx.currency, locale=loc)  # noqa: E731
        return cls(
            template=template,
            language=loc.language if loc.language in LANGUAGES else "en",
            store=" ".join(ctx.store_name.split()),
            items=tuple(i.title for i in ctx.items),
            offer_percent=ctx.offer_percent if template == "offer" else None,
            price_drops=tuple(
                (i.title, money(i.unit_price), money(i.previous_unit_price))
                for i in ctx.items
                if i.previous_unit_price is not None and i.previous_unit_price > i.unit_price
            ),
            low_stock=tuple(
                (i.title, i.stock_left) for i in ctx.items if i.stock_left is not None and i.stock_left > 0
            ),
        )

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)


def rejection(subject: str, facts: SubjectFacts) -> str | None:
    """Why a generated subject may not be used, or None when every guardrail passes."""
    if not subject or "\n" in subject or "\r" in subject:
        return "empty or multi-line"
    if len(subject) > MAX_LENGTH:
        return f"longer than {MAX_LENGTH} characters"
    backing = " ".join([facts.store, *facts.items])
    acronyms = {w for w in _WORD.findall(backing) if w.isupper()}
    shouted = [w for w in _WORD.findall(subject) if len(w) > 1 and w.isupper() and w not in acronyms]
    if shouted:
        return "all-caps word"
    if _NEVER.search(subject):
        return "deadline, pressure or unbacked promise"
    if facts.offer_percent is None and _OFFER.search(subject):
        return "mentions a discount without an offer"
    if not facts.low_stock and _SCARCITY.search(subject):
        return "claims scarcity without a low-stock fact"
    if not facts.price_drops and _PRICE_DROP.search(subject):
        return "claims a price drop that was not recorded"
    allowed = {_digits(n) for n in _NUMBER.findall(" ".join(_fact_texts(facts)))}
    if any(_digits(n) not in allowed for n in _NUMBER.findall(subject)):
        return "a number that is not in the facts"
    return None


def _fact_texts(facts: SubjectFacts) -> list[str]:
    texts = [facts.store, *facts.items, *(f"{now} {was}" for _, now, was in facts.price_drops)]
    texts += [str(count) for _, count in facts.low_stock]
    if facts.offer_percent is not None:
        texts.append(str(facts.offer_percent))
    return texts


def _digits(number: str) -> str:
    return re.sub(r"[.,]", "", number)


class SubjectWriter:
    """Thread-safe; one per process. `subject()` never raises and never waits longer than `timeout`."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.openai.com/v1",
        model: str = "gpt-4o-mini",
        timeout: float = 3.0,
        cache_size: int = 2048,
        cooldown: float = 30.0,
    ) -> None:
        self._api_key, self._url, self._model = api_key, base_url.rstrip("/") + "/chat/completions", model
        self._timeout, self._cooldown, self._cache_size = timeout, cooldown, cache_size
        self._cache: OrderedDict[str, str | None] = OrderedDict()
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._client: httpx.Client | None = None

    def subject(self, template: str, ctx: MessageContext, fallback: str) -> str:
        facts = SubjectFacts.of(template, ctx)
        key = facts.key()
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key] or fallback
            if time.monotonic() < self._paused_until:
                return fallback  # the API just failed: don't make every send wait for it
        try:
            generated = self._generate(facts)
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
            log.warning("subject generation failed (%s); using the deterministic line", type(exc).__name__)
            with self._lock:
                self._paused_until = time.monotonic() + self._cooldown
            return fallback
        reason = rejection(generated, facts)
        if reason:
            log.info("generated subject rejected: %s; using the deterministic line", reason)
        with self._lock:  # a rejection is cached too: the same facts would cost another call for nothing
            self._cache[key] = None if reason else generated
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return fallback if reason else generated

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _generate(self, facts: SubjectFacts) -> str:
        if self._client is None:
            self._client = httpx.Client(timeout=httpx.Timeout(self._timeout))
        response = self._client.post(
            self._url,
            headers={"Authorization": f"Bearer {self._api_key}"},
            json={
                "model": self._model,
                "messages": [
                    {"role": "system", "content": _instructions(facts)},
                    {"role": "user", "content": facts.key()},
                ],
                "temperature": 0.7,
                "max_tokens": 40,
                "n": 1,
            },
        )
        response.raise_for_status()  # 429 and 5xx included: the fallback is immediate, no retry here
        body: Any = response.json()
        text = body["choices"][0]["message"]["content"]
        if not isinstance(text, str):
            raise TypeError("no text content")
        # Line breaks are kept: a multi-line answer did not follow the instructions and is rejected.
        return re.sub(r"[ \t]+", " ", text).strip().strip('"“”„«»').strip()


def _instructions(facts: SubjectFacts) -> str:
    language = _LANGUAGE_NAMES.get(facts.language, "English")
    return (
        f"Write one subject line in {language} for a friendly cart reminder email from the store named in "
        f"the facts (JSON). Step of the sequence: {facts.template}. At most {MAX_LENGTH} characters. Plain "
        "text, no emoji, no words in capital letters, no exclamation marks in a row. Only state what the "
        "facts say: mention a discount only if offer_percent is set, stock only if low_stock is set, a price "
        "drop only if price_drops is set. No deadlines, countdowns or pressure. No numbers other than those "
        "in the facts. "
        "Reply with the subject line only."
    )


def subject_writer(settings: Settings) -> SubjectWriter | None:
    """Only with OPENAI_API_KEY: without it the deterministic lines are the subjects."""
    if not settings.openai_api_key:
        return None
    return SubjectWriter(
        settings.openai_api_key,
        base_url=settings.openai_base_url,
        model=settings.openai_model,
        timeout=settings.openai_timeout,
    )
