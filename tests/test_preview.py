"""Template previews with the sample cart: `cartresq preview` and GET /preview/<template>."""

from __future__ import annotations

import html
import re

import pytest
from click.testing import CliRunner

from app.cli import main
from recovery.content import TEMPLATES


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
        ("/preview/offer?channel=fax", 400, "channel must be email or sms"),
        ("/preview/offer?locale=%3Cscript%3E", 400, "locale must be"),
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
