"""Template previews for the merchant: every message of the sequence rendered with an invented sample cart."""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, request

from recovery.content import TEMPLATES, preview_sms
from recovery.content import preview as preview_email

bp = Blueprint("preview", __name__)
_LOCALE = re.compile(r"^[A-Za-z]{2,8}([-_][A-Za-z0-9]{1,8}){0,3}$")


@bp.get("/preview/<template>")
def preview(template: str) -> Response:
    """`?locale=de-DE` (default en-US); `?channel=sms` shows the text message instead of the email.

    The email's subject is its HTML <title>, so the browser tab shows it as a mail client would.
    """
    if template not in TEMPLATES:
        abort(404, description=f"unknown template {template!r}; expected one of {', '.join(TEMPLATES)}")
    locale = request.args.get("locale", "en-US")
    if not _LOCALE.match(locale):
        abort(400, description="locale must be a BCP 47 tag such as en-US or de-DE")
    channel = request.args.get("channel", "email")
    if channel == "sms":
        return Response(preview_sms(template, locale), mimetype="text/plain")
    if channel != "email":
        abort(400, description="channel must be email or sms")
    return Response(preview_email(template, locale).html, mimetype="text/html")
