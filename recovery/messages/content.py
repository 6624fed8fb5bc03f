"""Recovery messages: personal and honest, prices in the cart's currency, every claim backed by data.

Urgency comes only from facts the caller filled in from real data (`stock_left`, a recorded price
drop); nothing here invents scarcity, countdowns or policies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any

from babel import Locale
from babel.dates import format_date, format_time
from babel.numbers import format_currency
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from recovery.messages import catalogs, store_copy
from recovery.messages.names import greeting_name

TEMPLATES = ("gentle_reminder", "value_proposition", "offer", "final_call")
#: The triggered flows' templates (recovery/flows): cart-based (price drop, back in stock) or product lists.
FLOW_TEMPLATES = ("price_drop", "back_in_stock", "cross_sell", "browse_abandonment")
#: Keys a flow template words its own way ("footer.why.price_drop"), else the cart reminders' line.
_FLOW_KEYS = ("footer.why", "button")
LANGUAGES = catalogs.LANGUAGES  # one gettext catalog each under locale/; others fall back to English
LOW_STOCK = 10  # "Only N left" is shown at or below this, and only when inventory says so
SMS_MAX = 320  # two GSM-7 segments; a reminder must never become a long multi-part text
_SMS_STORE_NAME_MAX = 40


@dataclass(frozen=True)
class ItemView:
    title: str
    variant_title: str | None
    quantity: int
    unit_price: Decimal
    image_url: str | None = None
    # Optional facts, filled by the caller only from real data:
    previous_unit_price: Decimal | None = None  # set only when the recorded price for the variant dropped
    stock_left: int | None = None  # set only when inventory says so


@dataclass(frozen=True)
class MessageContext:
    store_name: str
    store_url: str
    postal_address: str
    first_name: str | None
    locale: str  # BCP 47 from the shopper's browser or checkout, e.g. "en-US", "de-DE"
    currency: str  # the cart's currency, ISO 4217
    items: tuple[ItemView, ...]
    #: The cart's own total (checkout prices, maybe shipping and tax). Not shown as such: the email shows
    #: the sum of `items`, labelled "Total" only when the two agree (`_variables`).
    total: Decimal
    restore_url: str
    unsubscribe_url: str
    open_pixel_url: str | None
    offer_code: str | None = None
    offer_percent: int | None = None
    offer_expires_at: datetime | None = None
    #: A flow's facts (recovery/flows): `item` (a title), `now`/`was` (Decimal, the cart's currency),
    #: `source` ("co_purchase" or "popular" for recommendations).
    flow: dict[str, Any] | None = None
    #: Recommended products: the cross-sell's list, the browse reminder's product, or "you may also like".
    products: tuple[ProductView, ...] = ()
    #: The store's own text (recovery/store_copy.py), `part.template` → text, in this message's language.
    own_copy: Mapping[str, str] | None = None


@dataclass(frozen=True)
class ProductView:
    title: str
    price: Decimal
    url: str
    image_url: str | None = None


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class _Line:
    title: str
    variant_title: str | None
    quantity: int
    image_url: str | None
    unit_price: str
    line_total: str
    price_drop: str | None
    stock: str | None


@cache
def _env() -> Environment:
    # Built on first render, not at import: importing the core must stay free of I/O.
    return Environment(
        loader=PackageLoader("recovery.messages", "templates"),
        autoescape=select_autoescape(["html"]),  # .txt parts and SMS stay verbatim
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates ship with the package: no stat() of their files on every render
    )


def _strings(language: str) -> dict[str, str]:
    return catalogs.strings(language)


def _locale(tag: str) -> Locale:
    """The locale the copy is written in: the shopper's when we have its language, else English (text,
    `lang` and number formats alike)."""
    return catalogs.copy_locale(tag)


@lru_cache(maxsize=4096)  # Babel's formatting showed in send profiles; prices and totals repeat a lot
def _money(amount: Decimal, currency: str, loc: Locale) -> str:
    return format_currency(amount, currency, locale=loc)


def _clean(value: str | None) -> str | None:
    """Collapse whitespace (no line breaks can reach a subject header); empty means unknown."""
    return (" ".join(value.split()) or None) if value else None


def _check(template: str, ctx: MessageContext) -> None:
    if template not in TEMPLATES + FLOW_TEMPLATES:
        raise ValueError(f"unknown template {template!r}; expected one of {TEMPLATES + FLOW_TEMPLATES}")
    if template in FLOW_TEMPLATES and not (ctx.flow and ctx.flow.get("item")):
        raise ValueError(f"the {template} template needs its facts: at least the item")
    if template == "offer":
        if not ctx.offer_code or ctx.offer_percent is None:
            raise ValueError("the offer template needs a real offer: offer_code and offer_percent")
        if not 0 < ctx.offer_percent <= 100:
            raise ValueError(f"offer_percent must be 1..100, got {ctx.offer_percent}")


def _variables(template: str, ctx: MessageContext) -> dict[str, Any]:
    """Everything the templates see, with all money already formatted for the shopper's locale."""
    _check(template, ctx)
    loc = _locale(ctx.locale)
    flow_copy = catalogs.has_flow_copy(loc.language)
    if template in FLOW_TEMPLATES and not flow_copy:
        loc = catalogs.ENGLISH  # no flow copy in this language: English text, lang and formats alike
    strings = _strings(loc.language)
    # The name only when it looks like one (recovery/messages/names.py): shoppers type it themselves.
    name, store = greeting_name(ctx.first_name), _clean(ctx.store_name) or ""
    facts: dict[str, object] = {"name": name, "store": store, "percent": ctx.offer_percent, "code": ctx.offer_code}

    def money(amount: Decimal) -> str:
        return _money(amount, ctx.currency, loc)

    flow = ctx.flow or {}
    if template in FLOW_TEMPLATES:
        facts["item"] = _clean(str(flow.get("item") or "")) or ""
        facts.update({k: money(Decimal(str(flow[k]))) for k in ("now", "was") if flow.get(k) is not None})

    def say(key: str, **extra: object) -> str:
        own = (ctx.own_copy or {}).get(key)
        if own and (name or "{name}" not in own):  # the store's words; without a name, the default copy
            return store_copy.fill(own, facts)
        # Our strings are the format strings; shopper and store data only ever fill the placeholders.
        if key in _FLOW_KEYS and f"{key}.{template}" in strings:
            key = f"{key}.{template}"
        chosen = strings.get(f"{key}.named", strings[key]) if name else strings[key]
        return chosen.format(**{**facts, **extra})

    # The figure under the lines is always their sum at the prices shown: a cart's stored total (prices
    # when it was abandoned, maybe shipping and tax) beside today's lower line prices would contradict them.
    # Labelled "Total" only when it is the cart's total too, else "Subtotal at today's prices".
    shown = sum((item.unit_price * item.quantity for item in ctx.items), Decimal(0))
    expires = None
    if template == "offer" and (at := ctx.offer_expires_at) is not None:
        at = at if at.tzinfo else at.replace(tzinfo=UTC)  # stored times are UTC
        when = (
            f"{format_date(at, 'long', locale=loc)}, {format_time(at, 'short', tzinfo=UTC, locale=loc)} UTC"
        )
        expires = say("offer.expires", date=when)
    return {
        "lang": loc.language,
        "say": say,
        "subject": say(f"subject.{template}"),
        "preheader": say(f"preheader.{template}"),
        "greeting": say("greeting"),
        "store_name": store,
        "store_url": ctx.store_url,
        "postal_address": ", ".join(p.strip() for p in ctx.postal_address.splitlines() if p.strip()),
        "lines": [_line(item, money, say) for item in ctx.items],
        "total": money(shown),
        "total_label": say("total") if shown == ctx.total else say("subtotal"),
        "restore_url": ctx.restore_url,
        "unsubscribe_url": ctx.unsubscribe_url,
        "open_pixel_url": ctx.open_pixel_url,
        "offer_code": ctx.offer_code,
        "offer_expires": expires,
        "intro": say(_intro(template, flow.get("source")))
        if template in FLOW_TEMPLATES else None,
        "products": [
            {"title": p.title, "price": money(p.price), "url": p.url, "image_url": p.image_url} for p in ctx.products
        ] if flow_copy or template in FLOW_TEMPLATES else [],  # no English heading inside a French reminder
        "products_heading": None if template in FLOW_TEMPLATES else say("you_may_also_like"),
    }


def _line(item: ItemView, money: Callable[[Decimal], str], say: Callable[..., str]) -> _Line:
    was, left, variant = item.previous_unit_price, item.stock_left, _clean(item.variant_title)
    return _Line(
        title=item.title,
        variant_title=None if variant == "Default Title" else variant,  # Shopify's single-variant placeholder
        quantity=item.quantity,
        image_url=item.image_url,
        unit_price=money(item.unit_price),
        line_total=money(item.unit_price * item.quantity),
        price_drop=say("price_drop", now=money(item.unit_price), was=money(was))
        if was is not None and was > item.unit_price
        else None,
        stock=say("stock", count=left) if left is not None and 0 < left <= LOW_STOCK else None,
    )


def render_email(template: str, ctx: MessageContext) -> RenderedEmail:
    """Raises ValueError for an unknown template, or for `offer` without a real offer."""
    variables = _variables(template, ctx)
    env = _env()
    return RenderedEmail(
        subject=variables["subject"],
        html=env.get_template(f"email/{template}.html").render(variables),
        text=env.get_template(f"email/{template}.txt").render(variables),
    )


def render_sms(template: str, ctx: MessageContext) -> str:
    """Store name, restore URL and opt-out wording; raises ValueError if it would pass SMS_MAX."""
    variables = _variables(template, ctx)
    store = variables["store_name"]
    if len(store) > _SMS_STORE_NAME_MAX:  # "..." rather than "…": stays in the GSM-7 alphabet
        variables["store_name"] = store[: _SMS_STORE_NAME_MAX - 3].rstrip() + "..."
    body = _env().get_template(f"sms/{template}.txt").render(variables).strip()
    if len(body) > SMS_MAX:
        raise ValueError(f"SMS would be {len(body)} characters (limit {SMS_MAX}): restore URL too long")
    return body


def sample_context(locale: str = "en-US", currency: str = "USD", image_url: str | None = None) -> MessageContext:
    """An invented cart for previews: one price drop, one low-stock item, an offer. `image_url` is the
    first item's picture (the web preview serves one itself; None: no picture)."""
    return MessageContext(
        store_name="Hollow Oak Goods",
        store_url="https://hollow-oak-goods.myshopify.com",
        postal_address="100 Example Street, Springfield, ST 00000",
        first_name="Alex",
        locale=locale,
        currency=currency,
        items=(
            ItemView("Waxed Canvas Tote", "Olive", 2, Decimal("49.90"), image_url),
            ItemView("Enamel Camp Mug", "Cream", 1, Decimal("18.00"), None, Decimal("24.00"), stock_left=3),
        ),
        total=Decimal("117.80"),
        restore_url="https://app.example.com/r/sample-restore",
        unsubscribe_url="https://app.example.com/u/sample-unsubscribe",
        open_pixel_url=None,  # previews must not count as opens
        offer_code="WELCOME10",
        offer_percent=10,
        offer_expires_at=datetime(2030, 1, 31, 23, 0, tzinfo=UTC),
    )


#: The sample cart's currency by the copy's language: where most of its shoppers pay in it.
_SAMPLE_CURRENCY = {"de": "EUR", "fr": "EUR", "es": "EUR", "it": "EUR", "nl": "EUR", "pt": "BRL"}


def _sample_currency(locale: str) -> str:
    return _SAMPLE_CURRENCY.get(_locale(locale).language, "USD")


def preview(template: str, locale: str = "en-US", image_url: str | None = None) -> RenderedEmail:
    """The email for the sample cart, in the currency most shoppers of that language pay in."""
    return render_email(template, sample_context(locale, _sample_currency(locale), image_url))


def preview_sms(template: str, locale: str = "en-US") -> str:
    return render_sms(template, sample_context(locale, _sample_currency(locale)))


def _intro(template: str, source: object) -> str:
    """The flow's opening line: the cross-sell says where its products came from (recovery/flows/products.py)."""
    if source == "popular":
        return f"intro.{template}.popular"
    if template == "cross_sell" and source in ("related", "category"):  # the platform's or the category's picks
        return "intro.cross_sell.related"
    return f"intro.{template}"
