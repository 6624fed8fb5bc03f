"""The beacon contract (notes: POST /track): msgspec Structs whose fields carry their rules. Beacons are untrusted input.

The one definition of the beacon: each field's type (checked by msgspec, in C) and, in its annotation,
the rules its value must pass in order (`Text`, `Token`, marshmallow's validators for ranges, choices,
patterns and e-mail addresses), checked by `_Checked.__post_init__`. A 400 says what broke as it did
when the schema was marshmallow's: `cart.items.0.quantity: Not a valid integer.` (recovery/intake/tracking_reasons.py
translates msgspec's type errors into those words), so trackers and operators see the same reasons.

Unknown fields are ignored on purpose: a newer tracker may send more than this server knows, and nothing
outside the schema is ever stored. Every string is stripped and bounded. Free text (titles, SKUs) is
stored as plain text and escaped wherever it is shown, so ordinary `<`, `>` and `&` ("Shirt <Limited>",
"Tee \"Rock & Roll\" <3") are accepted; only script-like content is refused, since no real product is
named that way and it is the one thing worth keeping out of every later renderer. An unusable browser
time zone is dropped, not refused: losing one optional hint beats losing the beacon.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from babel.numbers import is_currency
from marshmallow import ValidationError, validate

from recovery.intake.tracking_reasons import by_key, reason

MAX_BEACON_BYTES = 8192
TYPES = ("cart", "contact", "exit", "popup", "checkout_started", "checkout_contact", "checkout_completed",
         "view")
MAX_MINOR_UNITS = 10**12  # a trillion cents: far above any real cart, far below overflow
#: Script-like content: active tags, script URLs and inline event handlers (`onerror=`, `onclick =`).
_SCRIPT = re.compile(
    r"<\s*/?\s*(?:script|iframe|frame|frameset|object|embed|applet|svg|math|style|link|meta|base|form)\b"
    r"|(?:java|vb)script\s*:|data\s*:\s*text/html"
    r"|(?:^|[\s\"'/;])on[a-z]{3,}\s*=",
    re.IGNORECASE,
)
_ZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,2}")
_VID = re.compile(r"[a-z0-9]{24}")  # what the tracker makes (24 base-36 characters)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: A lone surrogate ("\ud800" in JSON) is no character: PostgreSQL refuses to store it.
_SURROGATE = re.compile("[\ud800-\udfff]")
_TOKEN = re.compile(r"[A-Za-z0-9_\-=+/.:?&%]+")  # opaque platform tokens: printable, no spaces or markup
#: Anchored at both ends: marshmallow's Regexp uses `match`, which alone would accept any suffix.
_HOST = re.compile(r"(?i)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+(:\d{1,5})?(/[a-z0-9._~%-]+)*\Z")  # a WooCommerce store in a folder: host/path
_ID = re.compile(r"\d{1,20}")


class BeaconError(ValueError):
    """A beacon that breaks the contract: the message is the 400 answer's reason."""


# --- rules: each takes the value (never None: msgspec let None through only where it is allowed) and returns
# the value to keep, or raises ValidationError with the reason ---------------------------------------------


class Text:
    """Stripped, bounded, no control characters, nothing script-like."""

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length

    def __call__(self, value: str) -> str:
        text = value.strip()
        if len(text) > self.max_length:
            raise ValidationError(f"longer than {self.max_length} characters")
        if _CONTROL.search(text):
            raise ValidationError("contains control characters")
        if _SURROGATE.search(text):
            raise ValidationError("is not valid Unicode (a lone surrogate)")
        if _SCRIPT.search(text):
            raise ValidationError("contains script-like content")
        return text


class Token(Text):
    def __call__(self, value: str) -> str:
        text = super().__call__(value)
        if not _TOKEN.fullmatch(text):
            raise ValidationError("is not a token")
        return text


def platform_id(value: Any) -> str:
    """Platform ids arrive as JSON numbers or digit strings; kept as strings, like the webhooks'."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValidationError("is not an id")
    text = str(value).strip()
    if not _ID.fullmatch(text):
        raise ValidationError("is not an id")
    return text


def strict_bool(value: Any) -> bool:
    """JSON true/false only: 1, "yes" and friends are not consent."""
    if not isinstance(value, bool):
        raise ValidationError("is not a boolean")
    return value


def time_zone(value: Any) -> str | None:
    """An IANA zone name, or None for anything else (unknown, misspelt, not a string): never an error.

    Browsers report zones this server's tz database may not know yet (or old aliases); the beacon is
    still worth keeping, the cart simply has no browser zone then."""
    if not isinstance(value, str) or not _ZONE.fullmatch(value.strip()) or len(value.strip()) > 64:
        return None
    try:
        ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    return value.strip()


def visitor_id(value: Any) -> str | None:
    """The tracker's visitor id: an unusable one is dropped, not refused (the beacon is still worth its other fields)."""
    return value if isinstance(value, str) and _VID.fullmatch(value) else None


def currency(value: str) -> str:
    if not (re.fullmatch(r"[A-Z]{3}", value) and is_currency(value)):
        raise ValidationError("is not an ISO 4217 currency code")
    return value


def one_of(*choices: str) -> validate.OneOf:
    return validate.OneOf(choices)


def between(low: int, high: int) -> validate.Range:
    return validate.Range(low, high)


Rule = Callable[[Any], Any]


class _Checked(msgspec.Struct, kw_only=True):
    """msgspec checked the types; each field's rules (its annotation's extras) run here, in order. As marshmallow
    did, the error shown is that of the first field by name, and `_whole` (rules across fields) runs only when
    every field passed."""

    _rules: ClassVar[tuple[tuple[str, tuple[Rule, ...]], ...]] = ()

    @classmethod
    def _compile(cls) -> None:
        """Each field's rules, read once from its annotation."""
        hints = get_type_hints(cls, include_extras=True)
        cls._rules = tuple(
            (name, tuple(m for m in hints[name].__metadata__ if callable(m)))
            for name in cls.__struct_fields__
            if hasattr(hints[name], "__metadata__")
        )

    def __post_init__(self) -> None:
        failed: tuple[str, str] | None = None
        for name, rules in self._rules:
            value = getattr(self, name)
            if value is None:
                continue
            try:
                for rule in rules:
                    value = rule(value)
            except ValidationError as exc:
                if failed is None or name < failed[0]:
                    failed = (name, _message(exc))
                continue
            setattr(self, name, value)
        if failed is not None:
            raise ValueError(f"{failed[0]}: {failed[1]}")
        self._whole()

    def _whole(self) -> None:
        """Rules across fields; raise ValueError(": reason") for the object itself, ("field: reason") for one field."""


def _message(exc: ValidationError) -> str:
    messages = exc.messages
    return str(messages[0] if isinstance(messages, list) and messages else messages)


# --- the beacon -------------------------------------------------------------------------------------------


class Item(_Checked, kw_only=True):
    # Optional, and the title may be empty: the web pixel's checkout lines do not always carry them.
    variant_id: Annotated[Any, platform_id] = None
    product_id: Annotated[Any, platform_id] = None
    quantity: Annotated[int, between(0, 1_000_000)]
    price: Annotated[int, between(0, MAX_MINOR_UNITS)] = 0
    title: Annotated[str, Text(120)] = ""
    sku: Annotated[str | None, Text(64)] = None


class CartInfo(_Checked, kw_only=True):
    # Required for type "cart" only: the web pixel describes a checkout, whose cart token it cannot see.
    token: Annotated[str | None, Token(255), validate.Regexp(r"^[^?]", error="is not a cart token")] = None
    currency: Annotated[str | None, Text(3), currency] = None
    total: Annotated[int | None, between(0, MAX_MINOR_UNITS)] = None
    count: Annotated[int | None, between(0, 1_000_000)] = None
    items: Annotated[list[Item], validate.Length(max=50)] = msgspec.field(default_factory=list)


class ContactInfo(_Checked, kw_only=True):
    email: Annotated[str | None, Text(254), validate.Email(error="is not an email address")] = None
    phone: Annotated[str | None, Text(32), validate.Regexp(r"^\+?[0-9 ()./-]{4,31}$")] = None

    def _whole(self) -> None:
        if not (self.email or self.phone):
            raise ValueError(": needs an email or a phone")


class Consent(_Checked, kw_only=True):
    analytics: Annotated[Any, strict_bool] = None
    marketing: Annotated[Any, strict_bool] = None
    preferences: Annotated[Any, strict_bool] = None
    sale_of_data: Annotated[Any, strict_bool] = None


class Beacon(_Checked, kw_only=True):
    v: Annotated[int, validate.Equal(1, error="unsupported beacon version")]
    shop: Annotated[str, Text(255), validate.Regexp(_HOST, error="is not a shop domain")]
    sid: Annotated[str, Text(64), validate.Regexp(r"^[A-Za-z0-9_-]{16,64}$", error="is not a session id")]
    type: Annotated[str, one_of(*TYPES)]
    ts: Annotated[int, between(1_577_836_800_000, 4_102_444_800_000)]  # 2020..2100, epoch ms
    page: Annotated[str | None, one_of("product", "cart", "collection", "index", "search", "checkout", "other")] = None
    tos: Annotated[int | None, between(0, 10**8)] = None
    device: Annotated[str | None, one_of("desktop", "mobile", "tablet")] = None
    tz: Annotated[Any, time_zone] = None
    cart: CartInfo | None = None
    checkout_token: Annotated[str | None, Token(255)] = None
    contact: ContactInfo | None = None
    consent: Consent | None = None
    popup: Annotated[str | None, one_of("shown", "closed", "email_submitted")] = None
    #: A product page's product (type "view", browse abandonment): the platform's id, never a title.
    product_id: Annotated[str | None, validate.Regexp(r"^\d{1,40}\Z", error="is not a product id")] = None
    #: The tracker's visitor id (kept across sessions in the browser's first-party storage).
    vid: Annotated[Any, visitor_id] = None

    def _whole(self) -> None:
        kind, cart = self.type, self.cart
        token = cart.token if cart is not None else None
        if kind == "cart" and not token:
            raise ValueError("cart: a cart beacon needs cart.token")
        if kind == "view" and not self.product_id:
            raise ValueError("product_id: a view beacon needs product_id")
        if kind == "popup" and not self.popup:
            raise ValueError("popup: a popup beacon needs popup")
        wants_contact = kind in ("contact", "checkout_contact") or self.popup == "email_submitted"
        if wants_contact and self.contact is None:
            raise ValueError(f"contact: a {kind} beacon needs contact")
        if (wants_contact or kind.startswith("checkout_")) and not (token or self.checkout_token):
            raise ValueError(f"cart: a {kind} beacon needs cart.token or checkout_token")
        self.shop = self.shop.lower()


for _struct in (Item, CartInfo, ContactInfo, Consent, Beacon):
    _struct._compile()


def parse_beacon(body: bytes) -> dict[str, Any]:
    """Body bytes → validated beacon (a dict of every field, defaults included); raises BeaconError with a short reason."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BeaconError("body is not UTF-8") from None
    try:
        raw = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise BeaconError("body is not valid JSON") from None
    if not isinstance(raw, dict):
        raise BeaconError("body is not a JSON object")
    try:
        try:
            beacon = msgspec.convert(raw, Beacon)
        except UnicodeEncodeError:  # a key with a lone surrogate: no field of ours, ignored as any unknown key
            raw = by_key(raw, keep=lambda key: not _SURROGATE.search(key))
            beacon = msgspec.convert(raw, Beacon)
    except msgspec.ValidationError as exc:
        raise BeaconError(_first_error(raw, str(exc))) from None
    return msgspec.to_builtins(beacon)  # type: ignore[no-any-return]


def _first_error(raw: dict[str, Any], error: str) -> str:
    """The reason for a refused beacon. msgspec stops at the first error in the order it reads; read in key
    order, that is mostly the error marshmallow showed first (the first field by name) when several fields are wrong."""
    try:
        msgspec.convert(by_key(raw), Beacon)
    except msgspec.ValidationError as exc:
        error = str(exc)
    return reason(error)[:200]


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")
