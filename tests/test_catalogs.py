"""The gettext catalogs: every language translates every string of the template, placeholders intact."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from recovery.messages import catalogs

LOCALE_DIR = Path(catalogs.__file__).parent / "locale"


def _read(path: Path):  # type: ignore[no-untyped-def]
    with path.open("rb") as handle:
        return read_po(handle)


def test_the_languages_are_the_seven_promised() -> None:
    assert set(catalogs.CATALOGS.values()) == {"en", "de", "fr", "es", "it", "nl", "pt_BR"}


@pytest.mark.parametrize("folder", sorted(set(catalogs.CATALOGS.values()) - {"en"}))
def test_every_string_is_translated_with_the_same_placeholders(folder: str) -> None:
    template = {m.context: m.id for m in _read(LOCALE_DIR / "messages.pot") if m.id}
    translated = {m.context: m for m in _read(LOCALE_DIR / folder / "LC_MESSAGES" / "messages.po") if m.id}
    assert set(translated) == set(template)
    same = [c for c, english in template.items() if translated[c].string == english]
    assert len(same) <= 2, f"{folder}: copied from English rather than translated: {same}"  # "Total" may stay
    for context, english in template.items():
        message = translated[context]
        assert message.id == english, f"{folder}: {context} translates an outdated English text"
        assert message.string, f"{folder}: {context} is not translated"
        placeholders = set(re.findall(r"\{(\w+)\}", english))
        assert set(re.findall(r"\{(\w+)\}", message.string)) <= placeholders, f"{folder}: {context}"
        if not context.endswith(".named") and "{name}" not in english:
            # the facts a line exists to tell (percent, code, count, prices, date) must all be said
            assert placeholders - {"store"} <= set(re.findall(r"\{(\w+)\}", message.string)), f"{folder}: {context}"


def test_locales_without_copy_fall_back_to_english_and_nonsense_is_no_locale() -> None:
    assert catalogs.copy_locale("pt-PT").language == "pt" and str(catalogs.copy_locale("pt-PT")) == "pt_PT"
    assert str(catalogs.copy_locale("ja-JP")) == "en" and str(catalogs.copy_locale("xx-YY")) == "en"
    assert catalogs.is_locale("ja-JP") and not catalogs.is_locale("xx-YY") and not catalogs.is_locale("<script>")
