"""Template previews for the merchant: every message of the sequence rendered with an invented sample cart."""

from __future__ import annotations

from flask import Blueprint, Response, abort, jsonify, request, url_for

from recovery.messages.catalogs import copy_locale, is_locale
from recovery.messages.content import TEMPLATES, preview_sms
from recovery.messages.push_content import preview_push
from recovery.messages.content import preview as preview_email

bp = Blueprint("preview", __name__)
CHANNELS = ("email", "sms", "push")

#: The sample cart's tote, drawn here so the preview needs no network and shows no broken image.
SAMPLE_IMAGE = """<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128" viewBox="0 0 128 128">
<rect width="128" height="128" rx="8" fill="#e7e5d8"/>
<path d="M44 46c0-14 8-22 20-22s20 8 20 22" fill="none" stroke="#5b6b3a" stroke-width="6"/>
<path d="M28 46h72l-6 62H34z" fill="#6b7d45"/>
<path d="M28 46h72l-2 14H30z" fill="#5b6b3a"/>
</svg>"""


@bp.get("/preview/sample-item.svg")
def sample_image() -> Response:
    return Response(SAMPLE_IMAGE, mimetype="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


@bp.get("/preview/<template>")
def preview(template: str) -> Response:
    """`?locale=de-DE` (default en-US); `?channel=sms` or `push` shows that message instead of the email.

    The email's subject is its HTML <title>, so the browser tab shows it as a mail client would. A locale
    we have no copy for is shown as the shopper would get it: in English, with English formats.
    """
    if template not in TEMPLATES:
        abort(404, description=f"unknown template {template!r}; expected one of {', '.join(TEMPLATES)}")
    locale = request.args.get("locale", "en-US")
    if len(locale) > 35 or not is_locale(locale):
        abort(400, description="locale must be a language tag Babel knows, such as en-US, de-DE or pt-BR")
    channel = request.args.get("channel", "email")
    if channel not in CHANNELS:
        abort(400, description=f"channel must be one of {', '.join(CHANNELS)}")
    if channel == "sms":
        return Response(preview_sms(template, locale), mimetype="text/plain")
    if channel == "push":
        title, body = preview_push(template, locale)
        return jsonify(title=title, body=body, lang=copy_locale(locale).language)
    image = url_for("preview.sample_image")
    return Response(preview_email(template, locale, image_url=image).html, mimetype="text/html")
