"""The unsubscribe page speaks the language the message was sent in and names the store (escaped)."""

from __future__ import annotations

import html

import pytest

from recovery.storage import tables as t
from tests.test_links import sent, token, unsubscribed  # noqa: F401  (the fixture: one sent email)


def _set(rt, message, *, locale: str | None, store_name: str) -> None:  # type: ignore[no-untyped-def]
    with rt.sessions.begin() as session:
        session.get(t.Cart, message.cart_id).locale = locale
        session.get(t.Store, message.store_id).name = store_name


@pytest.mark.parametrize("locale, question, button, done, lang", [
    ("de-DE", "Keine Warenkorb-Erinnerungen mehr von Keramik <Linde> & Co?", "Abmelden",
     "Keramik <Linde> & Co sendet Ihnen keine E-Mails zu Warenkörben mehr.", "de"),
    ("en-US", "Stop cart reminders from Keramik <Linde> & Co?", "Unsubscribe",
     "Keramik <Linde> & Co will not email you about carts again.", "en"),
    ("fr-FR", "Ne plus recevoir de rappels de panier de Keramik <Linde> & Co ?", "Se désabonner",
     "Keramik <Linde> & Co ne vous enverra plus d'e-mails au sujet de vos paniers.", "fr"),
    # no locale: the email was English
    (None, "Stop cart reminders from Keramik <Linde> & Co?", "Unsubscribe",
     "Keramik <Linde> & Co will not email you about carts again.", "en"),
])
def test_the_page_is_in_the_message_language_and_names_the_store(  # type: ignore[no-untyped-def]
    sent, locale: str | None, question: str, button: str, done: str, lang: str  # noqa: F811
) -> None:
    rt, client, message = sent
    _set(rt, message, locale=locale, store_name="Keramik <Linde> & Co")
    url = f"/u/{token(rt, 'unsubscribe', message)}"
    # The browser asks for another language: the message's language wins
    page = client.get(url, headers={"Accept-Language": "nl-NL"}).get_data(as_text=True)
    assert f'<html lang="{lang}">' in page and "<Linde>" not in page  # the store's name is escaped
    assert question in html.unescape(page) and f">{button}</button>" in html.unescape(page)
    assert "this store" not in page and unsubscribed(rt) == []  # a GET changes nothing
    response = client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and done in html.unescape(response.get_data(as_text=True))
    assert len(unsubscribed(rt)) == 1


def test_a_broken_link_answers_in_the_browser_language(sent) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    rt, client, message = sent
    response = client.get("/u/not-a-token", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    assert response.status_code == 400 and "Dieser Link ist ungültig" in response.get_data(as_text=True)
    assert "This link is not valid" in client.get("/u/not-a-token").get_data(as_text=True)


def test_the_other_link_pages_answer_in_the_browser_language(sent) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    rt, client, message = sent
    german = {"Accept-Language": "de-DE,de;q=0.9"}
    gone = client.get(f"/r/{rt.sender.links.sign('restore', 10**9, 10**9)}", headers=german)  # no such message or cart
    assert gone.status_code == 404 and "Dieser Warenkorb ist nicht mehr verfügbar" in gone.get_data(as_text=True)
    malformed = client.post(f"/u/{token(rt, 'unsubscribe', message)}", data={}, headers=german)
    assert malformed.status_code == 400 and "Es wurde nichts geändert" in malformed.get_data(as_text=True)
    assert unsubscribed(rt) == []
