"""Template previews with the sample cart: `cartresq preview` and GET /preview/<template>."""

from __future__ import annotations

import html
import re

import pytest
from click.testing import CliRunner

from app.cli import main
from recovery.messages.content import TEMPLATES


@pytest.mark.parametrize("template", TEMPLATES)
def test_cli_prints_subject_and_text_of_each_template(template: str) -> None:
    result = CliRunner().invoke(main, ["preview", "--template", template])
    assert result.exit_code == 0, result.output
    assert f"=== {template} (email, en-US) ===" in result.output
    assert "Subject: " in result.output and "Alex" in result.output.split("Subject: ")[1].split("\n")[0]
    # the sample cart's facts: a real price drop and a real low stock, formatted in dollars
    assert "now $18.00 (was $24.00)" in result.output and "Only 3 left" in result.output
    assert "Return to your cart: https://app.example.com/r/sample-restore" in result.output


def test_cli_previews_every_template_in_german_and_as_sms() -> None:
    german = CliRunner().invoke(main, ["preview", "--locale", "de-DE"])
    assert german.exit_code == 0 and german.output.count("=== ") == len(TEMPLATES)
    assert (
        "jetzt 18,00\xa0€ (vorher 24,00\xa0€)" in german.output
        and "Subject: Alex, 10 % Rabatt" in german.output
    )
    sms = CliRunner().invoke(main, ["preview", "--channel", "sms", "--template", "offer"])
    assert sms.exit_code == 0
    assert "Hollow Oak Goods: 10% off your cart, code WELCOME10:" in sms.output and "Reply STOP" in sms.output
    assert "Subject:" not in sms.output


def test_cli_refuses_an_unknown_template() -> None:
    result = CliRunner().invoke(main, ["preview", "--template", "countdown"])
    assert result.exit_code == 2 and "expected one of gentle_reminder" in result.output


def test_route_renders_the_html_with_escaping_and_the_subject_as_title(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/preview/final_call")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "<title>Alex, your cart is still saved — last reminder</title>" in page
    assert 'name="viewport"' in page and "max-width:600px" in page  # mobile-friendly single column
    assert "Only 3 left" in page and "now $18.00 (was $24.00)" in page


def test_route_in_german_and_as_sms(client) -> None:  # type: ignore[no-untyped-def]
    page = html.unescape(client.get("/preview/value_proposition?locale=de-DE").get_data(as_text=True))
    assert "Noch unentschlossen, Alex?" in page and "117,80\xa0€" in page
    sms = client.get("/preview/gentle_reminder?channel=sms")
    assert sms.mimetype == "text/plain" and "Reply STOP to opt out" in sms.get_data(as_text=True)


@pytest.mark.parametrize(
    "url, status, detail",
    [
        ("/preview/nope", 404, "unknown template"),
        ("/preview/offer?channel=fax", 400, "channel must be one of email, sms, push"),
        ("/preview/offer?locale=%3Cscript%3E", 400, "locale must be"),
        ("/preview/offer?locale=xx-YY", 400, "locale must be"),
        ("/preview/offer?locale=nonsense", 400, "locale must be"),
        ("/preview/offer?locale=en-US-x-" + "a" * 40, 400, "locale must be"),
    ],
)
def test_route_bad_input_is_a_precise_4xx(client, url: str, status: int, detail: str) -> None:  # type: ignore[no-untyped-def]
    response = client.get(url)
    assert response.status_code == status and detail in response.get_json()["detail"]


def test_the_dashboard_links_every_template_preview(self_hosted_client) -> None:  # type: ignore[no-untyped-def]
    client = self_hosted_client
    page = client.get("/").get_data(as_text=True)
    links = re.findall(r'href="(preview/[^"]+)"', page)
    assert {link.split("?")[0].split("/")[1] for link in links} == set(TEMPLATES)
    for link in links:
        assert client.get("/" + html.unescape(link)).status_code == 200


# --- languages (issue 25) ---

LOCALES = {  # locale: (the gentle reminder's subject in its catalog, the total in its usual currency and format)
    "en-US": ("Alex, did you mean to leave these behind?", "$117.80"),
    "de-DE": ("Alex, wollten Sie diese Artikel wirklich zurücklassen?", "117,80\xa0€"),
    "fr-FR": ("Alex, vous avez oublié quelque chose ?", "117,80\xa0€"),
    "es-ES": ("Alex, ¿querías dejar esto atrás?", "117,80\xa0€"),
    "it-IT": ("Alex, volevi davvero lasciarli qui?", "117,80\xa0€"),
    "nl-NL": ("Alex, wilde je deze artikelen achterlaten?", "€\xa0117,80"),
    "pt-BR": ("Alex, você queria mesmo deixar isso para trás?", "R$\xa0117,80"),
}


@pytest.mark.parametrize("locale", LOCALES)
def test_each_language_has_its_own_copy_lang_and_formats(client, locale: str) -> None:  # type: ignore[no-untyped-def]
    subject, total = LOCALES[locale]
    page = html.unescape(client.get(f"/preview/gentle_reminder?locale={locale}").get_data(as_text=True))
    assert f"<title>{subject}</title>" in page and total in page
    assert f'<html lang="{locale.split("-")[0]}">' in page


def test_a_locale_without_copy_falls_back_to_english_with_english_lang_and_formats(client) -> None:  # type: ignore[no-untyped-def]
    page = html.unescape(client.get("/preview/gentle_reminder?locale=ja-JP").get_data(as_text=True))
    assert '<html lang="en">' in page and "<title>Alex, did you mean to leave these behind?</title>" in page
    assert "$117.80" in page and "now $18.00 (was $24.00)" in page
    push = client.get("/preview/final_call?channel=push&locale=ja-JP").get_json()
    assert push["lang"] == "en" and push["body"].startswith("Last reminder")


@pytest.mark.parametrize("locale", LOCALES)
def test_every_channel_has_a_preview_in_every_language(client, locale: str) -> None:  # type: ignore[no-untyped-def]
    english = {t: client.get(f"/preview/{t}?channel=push").get_json()["body"] for t in TEMPLATES}
    for template in TEMPLATES:
        push = client.get(f"/preview/{template}?channel=push&locale={locale}")
        assert push.status_code == 200 and push.get_json()["title"] == "Hollow Oak Goods"
        assert (push.get_json()["body"] == english[template]) == locale.startswith("en")
        sms = client.get(f"/preview/{template}?channel=sms&locale={locale}")
        assert sms.status_code == 200 and "STOP" in sms.get_data(as_text=True)


def test_the_email_has_a_preheader_and_dark_mode_styles(client) -> None:  # type: ignore[no-untyped-def]
    page = html.unescape(client.get("/preview/offer?locale=fr-FR").get_data(as_text=True))
    body = page.split("<body", 1)[1]
    preheader = re.search(r'<div class="cq-preheader" style="display:none;[^"]*">([^<&\u2007]+)', body)
    assert preheader and preheader.group(1) == "10 % de réduction avec votre code chez Hollow Oak Goods."
    assert '<meta name="color-scheme" content="light dark">' in page
    assert "@media (prefers-color-scheme: dark)" in page and 'class="cq-button"' in page


def test_the_sample_image_is_served_by_the_app(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/preview/gentle_reminder").get_data(as_text=True)
    source = re.search(r'<img src="([^"]+)" width="64"', page)
    assert source and not source.group(1).startswith("http")  # no network, no broken link
    image = client.get(source.group(1))
    assert image.status_code == 200 and image.mimetype == "image/svg+xml" and b"<svg" in image.data


def test_cli_previews_push() -> None:
    result = CliRunner().invoke(main, ["preview", "--channel", "push", "--template", "offer", "--locale", "es-ES"])
    assert result.exit_code == 0
    assert "Hollow Oak Goods\n10 % de descuento con el código WELCOME10." in result.output
