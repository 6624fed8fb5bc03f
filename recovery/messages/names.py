"""Whether a shopper's first name goes into a message: the one place for the rule.

Anyone who starts a checkout can type any "first name" and any email address, so an unchecked name puts
their own text into the store's branded email to someone else ("Hi Win a prize at evil.example"). A name
is used only when it looks like a name: letters of any script (combining marks included), spaces,
hyphens, apostrophes and periods, at most `NAME_MAX` characters, no web address. Otherwise the message
greets without a name, which every template already words.
"""

from __future__ import annotations

import re
import unicodedata

NAME_MAX = 40
_PUNCTUATION = frozenset(" -'.\u2019\u2010\u2011")  # space, hyphens, apostrophes ('/’), period
#: A web address without a scheme: "evil.example", "www.x" (a period between two runs of letters, the
#: second at least two long). Initials such as "J.R." are fine.
_DOMAIN = re.compile(r"[^\W\d_]\.[^\W\d_]{2,}")


def greeting_name(value: str | None) -> str | None:
    """The first name to address the shopper by (whitespace collapsed), or None to greet without one."""
    if not value:
        return None
    name = " ".join(unicodedata.normalize("NFC", value).split())
    skeleton = "".join(ch for ch in name if unicodedata.category(ch)[0] != "M")  # "evil.\u034fexample" reads as a domain
    if not name or len(name) > NAME_MAX or _DOMAIN.search(skeleton):
        return None
    if not any(unicodedata.category(ch).startswith("L") for ch in name):
        return None  # punctuation only
    if all(unicodedata.category(ch)[0] in "LM" or ch in _PUNCTUATION for ch in name):
        return name
    return None
