"""Message copy in gettext catalogs, read with Babel: `recovery/messages/locale/<lang>/LC_MESSAGES/messages.po`.

Each string has a context (`msgctxt`, e.g. `subject.offer`) and its English text as `msgid`; a language's
`msgstr` translates it, and an empty one falls back to the English. `messages.pot` is the template a
translator starts from (`pybabel init -i recovery/messages/locale/messages.pot -d recovery/messages/locale -l sv`).
A shopper's locale whose language has no catalog gets English copy *and* English formats: a French
number format inside an English sentence, or `lang="ja"` on English text, would both be wrong.
"""

from __future__ import annotations

from functools import cache, lru_cache
from importlib import resources

from babel import Locale, UnknownLocaleError
from babel.messages.pofile import read_po

#: Language → catalog folder. Portuguese copy is Brazilian; Portugal's shoppers get it with their own formats.
CATALOGS = {"en": "en", "de": "de", "fr": "fr", "es": "es", "it": "it", "nl": "nl", "pt": "pt_BR"}
LANGUAGES = tuple(CATALOGS)
ENGLISH = Locale.parse("en")


@cache
def strings(language: str) -> dict[str, str]:
    """Context → text for a language of `CATALOGS` (English where a translation is empty)."""
    folder = CATALOGS[language]
    path = resources.files("recovery.messages").joinpath("locale", folder, "LC_MESSAGES", "messages.po")
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=folder)
    return {str(m.context): str(m.string or m.id) for m in catalog if m.id and m.context}


@lru_cache(maxsize=256)  # bounded: locale tags come from shoppers' browsers
def copy_locale(tag: str | None) -> Locale:
    """The locale messages are written in: the shopper's, when we have copy in its language, else English."""
    try:
        loc = Locale.parse((tag or "en").replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return ENGLISH
    return loc if loc.language in CATALOGS else ENGLISH


def is_locale(tag: str) -> bool:
    """A tag Babel knows (en-US, fr, pt-BR, ja-JP); nonsense such as xx-YY is not one."""
    try:
        Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return False
    return True
