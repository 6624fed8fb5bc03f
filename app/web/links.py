"""Links in messages: restore the cart, open pixel, unsubscribe (confirmation page and RFC 8058 one-click)."""

from __future__ import annotations

import base64

from flask import Blueprint, Response, redirect, request

from app.web import pages
from connectors.restore_links import rebuild_restore_url
from recovery.consent import engagement
from recovery.sequence import offers
from recovery.storage import tables as t
from recovery.storage.crypto import Vault
from recovery.config.store_settings import effective
from recovery.messages import catalogs
from recovery.messages.links import LinkError, LinkSigner, LinkTarget
from recovery.storage.tables import utcnow

bp = Blueprint("links", __name__)

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")

PAGE = """<!doctype html><html lang="{{ lang }}"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{ title }}</title>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem">
<h1 style="font-size: 1.4rem">{{ title }}</h1><p>{{ body }}</p></body></html>"""


def _signer() -> LinkSigner:
    from app.web import runtime

    return runtime().sender.links


def _page(title: str, body: str, status: int, lang: str = "en") -> tuple[str, int]:
    return pages.render(PAGE, title=title, body=body, lang=lang), status


def _browser_language() -> str:
    """The visitor's language among the catalogs' (Accept-Language), else English: for links we cannot read."""
    return request.accept_languages.best_match(catalogs.LANGUAGES) or "en"


def _say(language: str, key: str, **facts: str) -> str:
    """A page line from the message catalogs (recovery/messages/locale): our format string, facts fill it."""
    return catalogs.strings(language)[f"page.{key}"].format(**facts)


def _bad_link(error: LinkError) -> tuple[str, int]:
    lang = _browser_language()
    if error.reason == "expired":
        return _page(_say(lang, "link.expired"), _say(lang, "link.expired_body"), 410, lang)
    return _page(_say(lang, "link.invalid"), _say(lang, "link.invalid_body"), 400, lang)


@bp.get("/r/<token>")
def restore(token: str):  # type: ignore[no-untyped-def]
    """Record the click and send the shopper to the platform's recovery URL. Nobody is logged in by it."""
    from app.web import runtime

    try:
        target = _signer().verify("restore", token)
    except LinkError as exc:
        return _bad_link(exc)
    rt = runtime()
    with rt.sessions.begin() as session:
        message = session.get(t.RecoveryMessage, target.message_id)
        url = engagement.record_click(session, target)
        if not url:  # a cart known only from the storefront tracker: its link is rebuilt from its items
            url = rebuild_restore_url(session, target.cart_id, Vault(rt.settings.encryption_keys), utcnow())
        url = offers.apply_code(session, target.message_id, url)  # an offer's code rides along: /discount/CODE
        if message is not None and message.cart_id == target.cart_id:
            # Only to the shop's own domains; a cart without a usable URL goes to the shop's home page.
            url = engagement.own_domain(session, message.store_id, url)
    if not url:  # no message of this cart, or no store: nothing says which language it was written in
        lang = _browser_language()
        return _page(_say(lang, "cart.gone"), _say(lang, "cart.gone_body"), 404, lang)
    response = redirect(url, code=302)
    response.headers["Referrer-Policy"] = "no-referrer"  # the token must not leak to the store's analytics
    return response


@bp.get("/o/<token>")
def open_pixel(token: str) -> Response:
    from app.web import runtime

    try:
        target = _signer().verify("open", token)
    except LinkError:
        target = None  # a broken pixel still answers with an image; it records nothing
    if target is not None:
        with runtime().sessions.begin() as session:
            engagement.record_open(session, target)
    return Response(PIXEL, mimetype="image/gif", headers={"Cache-Control": "no-store, private"})


CONFIRM = """<!doctype html><html lang="{{ lang }}"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{ title }}</title>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem">
<h1 style="font-size: 1.4rem">{{ question }}</h1>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit" style="font-size: 1rem; padding: .6rem 1.2rem">{{ button }}</button></form></body></html>"""


def _sent_as(session, target: LinkTarget) -> tuple[str, str] | None:  # type: ignore[no-untyped-def]
    """(language, store name) of the message the link came in: the language it was written in (the cart's
    locale, as recovery/messages/content.py picks it) and the sender name it carried. None: no message."""
    message = session.get(t.RecoveryMessage, target.message_id)
    cart = session.get(t.Cart, target.cart_id)
    if message is None or cart is None or message.cart_id != cart.id:
        return None
    store = session.get(t.Store, message.store_id)
    if store is None:
        return None
    name = effective(store.settings or {})["sender_name"] or store.name or store.domain
    return catalogs.copy_locale(cart.locale or "en-US").language, " ".join(str(name).split())


@bp.route("/u/<token>", methods=["GET", "POST"])
def unsubscribe(token: str):  # type: ignore[no-untyped-def]
    """RFC 8058. GET (the footer link, and what mail scanners and link prefetchers fetch) changes nothing:
    it shows one button, which POSTs. A POST takes effect at once, only with the one-click body
    `List-Unsubscribe=One-Click` (what mail clients send, and what the button sends); no cookies needed."""
    from app.web import runtime

    try:
        target = _signer().verify("unsubscribe", token)
    except LinkError as exc:
        return _bad_link(exc)
    if request.method == "GET":
        with runtime().sessions() as session:  # reads only: a GET changes nothing
            sent = _sent_as(session, target)
        lang, store = sent or (_browser_language(), "")
        if not sent:
            return _page(_say(lang, "unsubscribe.gone"), _say(lang, "unsubscribe.gone_body"), 404, lang)
        page = pages.render(CONFIRM, lang=lang, title=_say(lang, "unsubscribe.title"),  # autoescaped
                            question=_say(lang, "unsubscribe.question", store=store),
                            button=_say(lang, "unsubscribe.button"))
        return page, 200, {"Cache-Control": "no-store"}
    if request.form.get("List-Unsubscribe") != "One-Click":
        lang = _browser_language()
        return _page(_say(lang, "unsubscribe.malformed"), _say(lang, "unsubscribe.malformed_body"), 400, lang)
    with runtime().sessions.begin() as session:
        sent = _sent_as(session, target)
        address = engagement.unsubscribe(session, target)
    lang, store = sent or (_browser_language(), "")
    if address is None or sent is None:
        return _page(_say(lang, "unsubscribe.gone"), _say(lang, "unsubscribe.gone_body"), 404, lang)
    return _page(_say(lang, "unsubscribe.done"), _say(lang, "unsubscribe.done_body", store=store), 200, lang)
