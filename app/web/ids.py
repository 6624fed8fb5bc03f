"""Stored row ids in URLs: `<id:name>` matches 1 .. 2**63 - 1 only (a BIGINT, and what SQLite's driver binds).

Any other number is no row of ours: the route does not match (404) instead of the driver raising
OverflowError (a 500). Registered by the app factory before any blueprint, so every route can use it.
"""

from __future__ import annotations

from werkzeug.routing import IntegerConverter, Map

MAX_ID = 2**63 - 1


class StoredId(IntegerConverter):
    regex = r"[1-9][0-9]{0,18}"  # ASCII digits, no leading zero: werkzeug's \d+ also took "١" and "１" as 1

    def __init__(self, map: Map) -> None:  # noqa: A002  (werkzeug's name)
        super().__init__(map, min=1, max=MAX_ID)


def register(app) -> None:  # type: ignore[no-untyped-def]
    app.url_map.converters["id"] = StoredId
