"""The beacon contract (notes: POST /track) as a marshmallow schema. Beacons are untrusted input.

Unknown fields are ignored on purpose (EXCLUDE): a newer tracker may send more than this server
knows, and nothing outside the schema is ever stored. Every string is stripped and bounded. Free text
(titles, SKUs) is stored as plain text and escaped wherever it is shown, so ordinary `<`, `>` and `&`
("Shirt <Limited>", "Tee \"Rock & Roll\" <3") are accepted; only script-like content is refused, since
no real product is named that way and it is the one thing worth keeping out of every later renderer.
An unusable browser time zone is dropped, not refused: losing one optional hint beats losing the beacon.
"""

from __future__ import annotations

import json
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.numbers import is_currency
from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate, validates_schema

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


class BeaconError(ValueError):
    """A beacon that breaks the contract: the message is the 400 answer's reason."""


class Text(fields.String):
    """Stripped, bounded, no control characters, nothing script-like."""

    def __init__(self, max_length: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = str(super()._deserialize(value, attr, data, **kwargs)).strip()
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
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not _TOKEN.fullmatch(text):
            raise ValidationError("is not a token")
        return text


class PlatformId(fields.Field):
    """Platform ids arrive as JSON numbers or digit strings; kept as strings, like the webhooks'."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValidationError("is not an id")
        text = str(value).strip()
        if not re.fullmatch(r"\d{1,20}", text):
            raise ValidationError("is not an id")
        return text


class StrictBool(fields.Field):
    """JSON true/false only: 1, "yes" and friends are not consent."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("is not a boolean")
        return value


def _int(low: int, high: int, **kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(low, high), **kwargs)


class TimeZone(fields.Field):
    """An IANA zone name, or None for anything else (unknown, misspelt, not a string): never an error.

    Browsers report zones this server's tz database may not know yet (or old aliases); the beacon is
    still worth keeping, the cart simply has no browser zone then.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str | None:
        if not isinstance(value, str) or not _ZONE.fullmatch(value.strip()) or len(value.strip()) > 64:
            return None
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError, OSError):
            return None
        return value.strip()


def _currency(value: str) -> None:
    if not (re.fullmatch(r"[A-Z]{3}", value) and is_currency(value)):
        raise ValidationError("is not an ISO 4217 currency code")


class Item(Schema):
    class Meta:
        unknown = EXCLUDE

    # Optional, and the title may be empty: the web pixel's checkout lines do not always carry them.
    variant_id = PlatformId(load_default=None)
    product_id = PlatformId(load_default=None)
    quantity = _int(0, 1_000_000, required=True)
    price = _int(0, MAX_MINOR_UNITS, load_default=0)
    title = Text(120, load_default="")
    sku = Text(64, load_default=None, allow_none=True)


class CartInfo(Schema):
    class Meta:
        unknown = EXCLUDE

    # Required for type "cart" only: the web pixel describes a checkout, whose cart token it cannot see.
    token = Token(255, load_default=None, validate=validate.Regexp(r"^[^?]", error="is not a cart token"))
    currency = Text(3, load_default=None, validate=_currency)
    total = _int(0, MAX_MINOR_UNITS, load_default=None)
    count = _int(0, 1_000_000, load_default=None)
    items = fields.List(fields.Nested(Item), load_default=list, validate=validate.Length(max=50))


class ContactInfo(Schema):
    class Meta:
        unknown = EXCLUDE

    email = Text(254, load_default=None, allow_none=True, validate=validate.Email(error="is not an email address"))
    phone = Text(32, load_default=None, allow_none=True, validate=validate.Regexp(r"^\+?[0-9 ()./-]{4,31}$"))

    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not (data.get("email") or data.get("phone")):
            raise ValidationError("needs an email or a phone")


class Consent(Schema):
    class Meta:
        unknown = EXCLUDE

    analytics = StrictBool(load_default=None, allow_none=True)
    marketing = StrictBool(load_default=None, allow_none=True)
    preferences = StrictBool(load_default=None, allow_none=True)
    sale_of_data = StrictBool(load_default=None, allow_none=True)


class Beacon(Schema):
    class Meta:
        unknown = EXCLUDE

    v = fields.Integer(strict=True, required=True, validate=validate.Equal(1, error="unsupported beacon version"))
    shop = Text(255, required=True, validate=validate.Regexp(_HOST, error="is not a shop domain"))
    sid = Text(64, required=True, validate=validate.Regexp(r"^[A-Za-z0-9_-]{16,64}$", error="is not a session id"))
    type = fields.String(required=True, validate=validate.OneOf(TYPES))
    ts = _int(1_577_836_800_000, 4_102_444_800_000, required=True)  # 2020..2100, epoch ms
    page = fields.String(
        load_default=None,
        validate=validate.OneOf(("product", "cart", "collection", "index", "search", "checkout", "other")),
    )
    tos = _int(0, 10**8, load_default=None)
    device = fields.String(load_default=None, validate=validate.OneOf(("desktop", "mobile", "tablet")))
    tz = TimeZone(load_default=None, allow_none=True)
    cart = fields.Nested(CartInfo, load_default=None)
    checkout_token = Token(255, load_default=None)
    contact = fields.Nested(ContactInfo, load_default=None)
    consent = fields.Nested(Consent, load_default=None)
    popup = fields.String(load_default=None, validate=validate.OneOf(("shown", "closed", "email_submitted")))
    #: A product page's product (type "view", browse abandonment): the platform's id, never a title.
    product_id = fields.String(load_default=None, validate=validate.Regexp(r"^\d{1,40}\Z", error="is not a product id"))

    @validates_schema
    def _by_type(self, data: dict[str, Any], **kwargs: Any) -> None:
        kind, cart = data.get("type"), data.get("cart")
        has_token = bool((cart or {}).get("token") or data.get("checkout_token"))
        if kind == "cart" and not (cart or {}).get("token"):
            raise ValidationError("a cart beacon needs cart.token", "cart")
        if kind == "view" and not data.get("product_id"):
            raise ValidationError("a view beacon needs product_id", "product_id")
        if kind == "popup" and not data.get("popup"):
            raise ValidationError("a popup beacon needs popup", "popup")
        wants_contact = kind in ("contact", "checkout_contact") or data.get("popup") == "email_submitted"
        if wants_contact and not data.get("contact"):
            raise ValidationError(f"a {kind} beacon needs contact", "contact")
        if (wants_contact or kind.startswith("checkout_")) and not has_token:
            raise ValidationError(f"a {kind} beacon needs cart.token or checkout_token", "cart")


    #: The tracker's visitor id (kept across sessions in the browser's first-party storage): an unusable one is
    #: dropped, not refused (the beacon is still worth its other fields).
    vid = fields.Raw(load_default=None)

    @post_load
    def _lower_shop(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["shop"] = data["shop"].lower()
        vid = data.get("vid")
        data["vid"] = vid if isinstance(vid, str) and _VID.fullmatch(vid) else None
        return data


SCHEMA = Beacon()


def parse_beacon(body: bytes) -> dict[str, Any]:
    """Body bytes → validated beacon; raises BeaconError with a short reason."""
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
        return SCHEMA.load(raw)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise BeaconError(_first_reason(exc.messages)) from None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _first_reason(messages: Any, path: str = "") -> str:
    """The first error as `field.sub: message`, short enough for a 400 body."""
    if isinstance(messages, dict):
        key = sorted(messages, key=str)[0]
        where = path if key == "_schema" else (f"{path}.{key}" if path else str(key))
        return _first_reason(messages[key], where)
    if isinstance(messages, list) and messages:
        return _first_reason(messages[0], path)
    reason = f"{path}: {messages}" if path else str(messages)
    return reason[:200]
