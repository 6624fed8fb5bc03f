"""A shopper's typed first name is used only when it looks like a name (recovery/messages/names.py)."""

from __future__ import annotations

import html
from dataclasses import replace

import pytest

from recovery.messages.content import TEMPLATES, render_email, render_sms, sample_context
from recovery.messages.names import NAME_MAX, greeting_name

HOSTILE = [
    "<img src=x onerror=alert(1)> Eve\r\nBcc: a@evil.example",  # the reviewer's checkout
    "Eve\r\nBcc: a@evil.example",
    "eve@example.com",
    "https://evil.example/win",
    "Win a prize at evil.example",
    "www.evil.example",
    "Eve/Bob",
    "Eve: call 555",
    "12345",
    "Agent 007",
    "<b>Eve</b>",
    "Eve & Bob",
    "Eve!!!",
    "x" * (NAME_MAX + 1),
    "- . '",
    "Eve\u202eevil",  # a bidi override: not a letter
    "evil\ufe0f.example",  # an invisible mark before the period still reads as a web address
    "evil.\u034fexample",
    "",
    "   ",
    None,
]
LEGITIMATE = ["José-María", "O'Neil", "O\u2019Neil", "Zoë", "李", "Jean Luc", "J.R.", "Anne-Sophie", "Ñandú",
              "Đorđe", "محمد", "Ólafur", "Zoe\u0308", "x" * NAME_MAX]


@pytest.mark.parametrize("value", HOSTILE)
def test_anything_that_is_not_a_name_is_dropped(value: str | None) -> None:
    assert greeting_name(value) is None


@pytest.mark.parametrize("value", LEGITIMATE)
def test_names_in_any_script_are_kept(value: str) -> None:
    import unicodedata
    assert greeting_name(value) == unicodedata.normalize("NFC", value)


def test_whitespace_is_collapsed() -> None:
    assert greeting_name("  Mary\n Ann ") == "Mary Ann"


@pytest.mark.parametrize("locale, greeting", [("en-US", "Hi,"), ("de-DE", "Hallo,")])
@pytest.mark.parametrize("template", TEMPLATES)
def test_a_hostile_name_never_reaches_subject_body_or_sms(template: str, locale: str, greeting: str) -> None:
    # Given the reviewer's checkout "first name" / When every template is rendered in English and German
    ctx = replace(sample_context(locale), first_name=HOSTILE[0])
    rendered, sms = render_email(template, ctx), render_sms(template, ctx)
    # Then none of it appears anywhere, and the greeting has no name
    for part in (rendered.subject, html.unescape(rendered.html), rendered.text, sms):
        assert "evil" not in part and "Bcc" not in part and "onerror" not in part and "Eve" not in part
    assert rendered.text.startswith(greeting + "\n")
    assert rendered.subject == render_email(template, replace(ctx, first_name=None)).subject


@pytest.mark.parametrize("name", ["José-María", "O'Neil", "Zoë", "李"])
def test_a_real_name_is_greeted(name: str) -> None:
    for locale, hello in (("en-US", "Hi"), ("de-DE", "Hallo")):
        rendered = render_email("gentle_reminder", replace(sample_context(locale), first_name=name))
        assert rendered.text.startswith(f"{hello} {name},") and name in rendered.subject
        assert f"{hello} {name}," in html.unescape(rendered.html)
