"""Where is the recipient? Candidate IANA zones for a cart: browser zone, else address and phone, else store.

Several candidates mean "we are not sure": the caller then allows a time only if it is allowed in all of them.
"""

from __future__ import annotations

import functools
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone

_NY, _CHI, _DEN, _PHX, _LA = "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles"

#: Multi-zone countries by province code (Shopify's `province_code`). A state split across zones lists
#: every zone it spans; a province not listed falls back to all of the country's zones.
PROVINCE_ZONES: dict[str, dict[str, tuple[str, ...]]] = {
    "US": {
        "AL": (_CHI,), "AK": ("America/Anchorage", "America/Adak"), "AZ": (_PHX, _DEN), "AR": (_CHI,),
        "CA": (_LA,), "CO": (_DEN,), "CT": (_NY,), "DE": (_NY,), "DC": (_NY,), "FL": (_NY, _CHI), "GA": (_NY,),
        "HI": ("Pacific/Honolulu",), "ID": ("America/Boise", _LA), "IL": (_CHI,),
        "IN": ("America/Indiana/Indianapolis", _CHI), "IA": (_CHI,), "KS": (_CHI, _DEN),
        "KY": ("America/Kentucky/Louisville", _CHI), "LA": (_CHI,), "ME": (_NY,), "MD": (_NY,), "MA": (_NY,),
        "MI": ("America/Detroit", "America/Menominee"), "MN": (_CHI,), "MS": (_CHI,), "MO": (_CHI,),
        "MT": (_DEN,), "NE": (_CHI, _DEN), "NV": (_LA, _DEN), "NH": (_NY,), "NJ": (_NY,), "NM": (_DEN,),
        "NY": (_NY,), "NC": (_NY,), "ND": (_CHI, _DEN), "OH": (_NY,), "OK": (_CHI,), "OR": (_LA, "America/Boise"),
        "PA": (_NY,), "RI": (_NY,), "SC": (_NY,), "SD": (_CHI, _DEN), "TN": (_CHI, _NY), "TX": (_CHI, _DEN),
        "UT": (_DEN,), "VT": (_NY,), "VA": (_NY,), "WA": (_LA,), "WV": (_NY,), "WI": (_CHI,), "WY": (_DEN,),
        "PR": ("America/Puerto_Rico",), "VI": ("America/St_Thomas",), "GU": ("Pacific/Guam",),
        "AS": ("Pacific/Pago_Pago",), "MP": ("Pacific/Saipan",),
    },
    "CA": {
        "AB": ("America/Edmonton",), "BC": ("America/Vancouver", "America/Edmonton"), "MB": ("America/Winnipeg",),
        "NB": ("America/Moncton",), "NL": ("America/St_Johns", "America/Goose_Bay"), "NS": ("America/Halifax",),
        "NT": ("America/Edmonton",), "NU": ("America/Iqaluit", "America/Winnipeg", "America/Edmonton"),
        "ON": ("America/Toronto", "America/Winnipeg"), "PE": ("America/Halifax",),
        "QC": ("America/Toronto", "America/Halifax"), "SK": ("America/Regina",), "YT": ("America/Whitehorse",),
    },
    "AU": {
        "ACT": ("Australia/Sydney",), "NSW": ("Australia/Sydney", "Australia/Broken_Hill"), "NT": ("Australia/Darwin",),
        "QLD": ("Australia/Brisbane",), "SA": ("Australia/Adelaide",), "TAS": ("Australia/Hobart",),
        "VIC": ("Australia/Melbourne",), "WA": ("Australia/Perth",),
    },
}


def valid_zone(name: str | None) -> str | None:
    if not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


@functools.cache
def country_zones() -> dict[str, tuple[str, ...]]:
    """ISO country code → its IANA zones, from the tzdata package's zone.tab."""
    text = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8")
    zones: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            fields = line.split("\t")
            if valid_zone(fields[2]):
                zones.setdefault(fields[0], []).append(fields[2])
    return {country: tuple(names) for country, names in zones.items()}


def address_zones(country: str | None, province: str | None) -> tuple[str, ...]:
    if not country:
        return ()
    country = country.upper()
    by_province = PROVINCE_ZONES.get(country, {})
    if province and province.upper() in by_province:
        return by_province[province.upper()]
    return country_zones().get(country, ())


@functools.lru_cache(maxsize=4096)
def phone_zones(phone: str | None) -> tuple[str, ...]:
    """Zones of the phone's area code (libphonenumber's data); none for an unknown or unparsable number."""
    if not phone:
        return ()
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return ()
    return tuple(z for z in phone_timezone.time_zones_for_number(number) if valid_zone(z))


def candidate_zones(
    shopper_timezone: str | None, country: str | None, province: str | None, phone: str | None, store_timezone: str
) -> tuple[str, ...]:
    """The browser's zone when known; else every zone the address or the phone's area code allows."""
    browser = valid_zone(shopper_timezone)
    if browser:
        return (browser,)
    zones = tuple(dict.fromkeys(address_zones(country, province) + phone_zones(phone)))
    return zones or (valid_zone(store_timezone) or "UTC",)
