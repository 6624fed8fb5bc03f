"""A store's own words for its messages: subject, preheader and intro per template and language.

The catalogs (recovery/locale) hold the default copy; a store may replace these three parts. Its text
may use the placeholders {name}, {store} and, in the offer, {percent} and {code}, nothing else; they are
filled by plain substitution (never `str.format`, which would let stored text reach attributes). Text
using {name} is used only when the shopper's first name is known; otherwise the default copy is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.messages import catalogs
from recovery.storage import tables as t

PARTS = ("subject", "preheader", "intro")
LIMITS = {"subject": 150, "preheader": 200, "intro": 1000}
_PLACEHOLDER = re.compile(r"\{(name|store|percent|code)\}")


class CopyError(ValueError):
    """Text a store cannot use: the message says why."""


def placeholders(template: str) -> tuple[str, ...]:
    return ("name", "store", "percent", "code") if template == "offer" else ("name", "store")


def check(template: str, part: str, text: str) -> str:
    """The text as stored (trimmed; empty means 'the default'), or CopyError."""
    value = " ".join(text.split()) if part != "intro" else text.strip().replace("\r\n", "\n")
    if len(value) > LIMITS[part]:
        raise CopyError(f"at most {LIMITS[part]} characters (this is {len(value)})")
    allowed = placeholders(template)
    for found in re.findall(r"\{([^{}]*)\}", value):
        if found not in allowed:
            raise CopyError(f"{{{found}}} is not a placeholder here; use {', '.join('{%s}' % a for a in allowed)}")
    rest = _PLACEHOLDER.sub("", value)
    if "{" in rest or "}" in rest:
        raise CopyError("braces { } are only for placeholders such as {store}")
    if template == "offer" and part in ("subject", "intro") and value and "{percent}" not in value:
        raise CopyError("the offer's subject and intro must say the discount: include {percent}")
    return value


def fill(text: str, values: Mapping[str, object]) -> str:
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1)) or ""), text)


def language_of(locale: str) -> str:
    return catalogs.copy_locale(locale).language


def load(session: Session, store_id: int, language: str) -> dict[str, str]:
    """`part.template` → the store's text, for one language (empty: the catalog's copy everywhere)."""
    rows = session.execute(
        select(t.StoreCopy.part, t.StoreCopy.template, t.StoreCopy.text).where(
            t.StoreCopy.store_id == store_id, t.StoreCopy.language == language)
    ).all()
    return {f"{part}.{template}": text for part, template, text in rows if text}


def save(session: Session, store_id: int, template: str, language: str, texts: Mapping[str, str]) -> None:
    """Replace the store's text for these parts (validated by the caller with `check`); empty deletes."""
    session.info.pop("store_copy", None)  # what compose read in this session (recovery/messages/compose.py)
    existing = {row.part: row for row in session.scalars(select(t.StoreCopy).where(
        t.StoreCopy.store_id == store_id, t.StoreCopy.template == template, t.StoreCopy.language == language))}
    for part, text in texts.items():
        row = existing.get(part)
        if not text:
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(t.StoreCopy(store_id=store_id, template=template, language=language, part=part, text=text))
        else:
            row.text = text
