"""Invented names, products and places for the simulator. None of it refers to a real person or shop."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

FIRST_NAMES: tuple[str, ...] = (
    "Avelin", "Brisco", "Corvina", "Dellwyn", "Esmira", "Fennick", "Galwin", "Halsey",
    "Isolde", "Jorvik", "Kestrel", "Lunet", "Marrow", "Nerissa", "Orlin", "Pellam",
)  # fmt: skip

#: (IANA zone, locale) pairs; the zone decides the shopper's local hour in the demo.
ZONES: tuple[tuple[str, str], ...] = (
    ("America/New_York", "en-US"),
    ("America/Chicago", "en-US"),
    ("America/Denver", "en-US"),
    ("America/Los_Angeles", "en-US"),
    ("Europe/London", "en-GB"),
    ("Europe/Berlin", "de-DE"),
    ("Australia/Sydney", "en-AU"),
)

DEVICES: tuple[str, ...] = ("desktop", "mobile", "tablet")
DEVICE_WEIGHTS: tuple[float, ...] = (0.45, 0.45, 0.10)

CURRENCY = "USD"


@dataclass(frozen=True)
class CatalogEntry:
    product_id: str
    variant_id: str
    title: str
    variant_title: str | None
    unit_price: Decimal


@dataclass(frozen=True)
class SimLineItem:
    """A catalog entry in a simulated cart; mirrors the fields of a normalized line item."""

    product_id: str
    variant_id: str
    title: str
    variant_title: str | None
    quantity: int
    unit_price: Decimal


def _entry(n: int, title: str, variant: str | None, price: str) -> CatalogEntry:
    return CatalogEntry(f"sim-prod-{n // 10}", f"sim-var-{n}", title, variant, Decimal(price))


CATALOG: tuple[CatalogEntry, ...] = (
    _entry(1001, "Driftwood Mug", "Sand", "18.00"),
    _entry(1002, "Driftwood Mug", "Slate", "18.00"),
    _entry(1011, "Harbor Canvas Tote", None, "24.00"),
    _entry(1021, "Lanternfly Candle", "Fig & Cedar", "32.50"),
    _entry(1031, "Quillmoss Notebook", "A5 Dotted", "12.75"),
    _entry(1041, "Tidewater Throw Blanket", "Ocean", "89.00"),
    _entry(1051, "Copperleaf Pour-Over Set", None, "64.00"),
    _entry(1061, "Brambleworth Wool Socks", "M", "16.00"),
    _entry(1062, "Brambleworth Wool Socks", "L", "16.00"),
    _entry(1071, "Glimmerstone Desk Lamp", "Brass", "129.00"),
    _entry(1081, "Fernhollow Plant Pot", "Large", "42.00"),
    _entry(1091, "Marlowe Linen Apron", None, "38.00"),
)
