"""Templates: the store's own subject, preheader and intro per template and language, a live preview by the
real renderer (from the store's recent cart, or the sample), and "send me a test"."""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify, redirect, render_template, request, url_for

from app.web.merchant import bp, samples
from app.web.merchant.context import current_store, merchant_required
from recovery.messages import store_copy
from recovery.messages import catalogs
from recovery.storage import tables as t
from recovery.messages.content import TEMPLATES

LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian",
                  "nl": "Dutch", "pt": "Portuguese (Brazil)"}


def _chosen() -> tuple[str, str]:
    source = request.form if request.method == "POST" else request.args
    template, language = source.get("template", "gentle_reminder"), source.get("language", "en")
    if template not in TEMPLATES:
        abort(400, f"template must be one of {', '.join(TEMPLATES)}")
    if language not in catalogs.CATALOGS:
        abort(400, f"language must be one of {', '.join(catalogs.CATALOGS)}")
    return template, language


def _posted(template: str) -> tuple[dict[str, str], dict[str, str]]:
    texts, errors = {}, {}
    for part in store_copy.PARTS:
        try:
            texts[part] = store_copy.check(template, part, request.form.get(part, "")[:5000])
        except store_copy.CopyError as exc:
            errors[part] = str(exc)
            texts[part] = request.form.get(part, "")[:5000]
    return texts, errors


def _own(template: str, texts: dict[str, str]) -> dict[str, str]:
    return {f"{part}.{template}": text for part, text in texts.items() if text}


@bp.route("/templates", methods=["GET", "POST"])
@merchant_required
def templates() -> Any:
    from app.web import runtime
    from app.web.merchant.mail import MailError, refused

    store = current_store()
    template, language = _chosen()
    errors: dict[str, str] = {}
    notice = "Test sent." if request.args.get("sent") == "1" else ("Saved." if request.args.get("saved") else None)
    with runtime().sessions.begin() as db:
        fresh = db.get(t.Store, store.id)
        if request.method == "POST":
            texts, errors = _posted(template)
            op = request.form.get("op", "save")
            if not errors and op == "save":
                store_copy.save(db, store.id, template, language, texts)
                return redirect(url_for("merchant.templates", template=template, language=language,
                                        store=request.args.get("store"), saved=1), 303)
            if not errors and op == "test":
                to = samples.recipient(db, fresh)
                if not to:
                    errors["test"] = "Set a reply-to address in the Setup guide first: the test goes to your own address."
                elif wait := refused("test", str(store.id)):
                    errors["test"] = f"Too many test messages this hour: try again in {wait // 60 + 1} min."
                else:
                    try:
                        samples.send_test(db, fresh, to, template, language, _own(template, texts))
                        notice = f"Test sent to {to}."
                    except (MailError, ValueError) as exc:
                        errors["test"] = f"The test could not be sent: {exc}"
        else:
            saved = store_copy.load(db, store.id, language)
            texts = {part: saved.get(f"{part}.{template}", "") for part in store_copy.PARTS}
        shown = samples.preview(db, fresh, template, language, _own(template, texts) if not errors else None)
        recipient = samples.recipient(db, fresh)
    strings = catalogs.strings(language)
    defaults = {part: strings.get(f"{part}.{template}", "") for part in store_copy.PARTS}
    return render_template(
        "merchant/templates.html", template=template, language=language, templates=TEMPLATES, texts=texts,
        defaults=defaults, errors=errors, preview=shown, languages=LANGUAGE_NAMES, notice=notice,
        placeholders=store_copy.placeholders(template), limits=store_copy.LIMITS, recipient=recipient,
    ), 400 if errors else 200


@bp.post("/templates/preview")
@merchant_required
def templates_preview() -> Any:
    """The live preview: the words being typed, rendered (JSON for the page's script)."""
    from app.web import runtime

    template, language = _chosen()
    texts, errors = _posted(template)
    if errors:
        return jsonify(errors=errors), 400
    with runtime().sessions() as db:
        shown = samples.preview(db, db.get(t.Store, current_store().id), template, language, _own(template, texts))
    return jsonify(subject=shown.email.subject, html=shown.email.html, sms=shown.sms)
