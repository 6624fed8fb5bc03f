"""Provider callbacks: SendGrid events, Twilio inbound SMS and status (web push capture: app/web/push.py).

Every callback is verified on the raw request before anything is parsed; a bad or missing signature gets
401 and writes nothing. Handlers are idempotent because providers retry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

import logging
import time
from xml.sax.saxutils import escape

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from flask import Blueprint, Response, jsonify, request

from app.web import jsonbody
from recovery.consent import delivery_events, suppress
from recovery.sending.channels.twilio_sms import to_e164

log = logging.getLogger(__name__)

bp = Blueprint("providers", __name__)

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
#: A signed SendGrid batch older than this is a replay (SendGrid posts within seconds; its retries of a
#: failed POST would carry a new timestamp and signature). Clocks may differ by up to `EVENT_SKEW` ahead.
EVENT_MAX_AGE, EVENT_SKEW = 600, 300


def _runtime():  # type: ignore[no-untyped-def]
    from app.web import runtime

    return runtime()


def _refuse(status: int, reason: str) -> tuple[Response, int]:
    return jsonify(error="Unauthorized" if status == 401 else "Bad Request", detail=reason), status


# --- SendGrid event webhook ---------------------------------------------------------------------------


def sendgrid_signature_ok(public_key_b64: str, signature_b64: str, timestamp: str, body: bytes) -> bool:
    """SendGrid's signed event webhook: ECDSA P-256 / SHA-256 over timestamp + raw body; key is base64 DER."""
    try:
        key = load_der_public_key(base64.b64decode(public_key_b64))
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        key.verify(
            base64.b64decode(signature_b64, validate=True),
            timestamp.encode() + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, ValueError, binascii.Error, TypeError):
        return False
    return True


@bp.post("/webhooks/sendgrid")
def sendgrid_events() -> tuple[Response, int]:
    rt = _runtime()
    key = rt.settings.sendgrid_verification_key
    body = request.get_data(cache=False)
    signature, timestamp = request.headers.get(SIGNATURE, ""), request.headers.get(TIMESTAMP, "")
    if not key:
        log.warning("SendGrid event refused: SENDGRID_WEBHOOK_VERIFICATION_KEY is not set")
        return _refuse(401, "event webhook verification key not configured")
    if not signature or not timestamp or not sendgrid_signature_ok(key, signature, timestamp, body):
        return _refuse(401, "invalid or missing event webhook signature")
    age = time.time() - int(timestamp) if timestamp.isascii() and timestamp.isdigit() else None
    if age is None or age > EVENT_MAX_AGE or age < -EVENT_SKEW:
        return _refuse(401, "event webhook timestamp is older than 10 minutes or in the future: a replay")
    try:
        events = jsonbody.loads(body)
    except ValueError:
        return _refuse(400, "body is not JSON")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        return _refuse(400, "expected a JSON array of event objects")
    with rt.sessions.begin() as session:
        counts = delivery_events.sendgrid_events(session, events)
    log.info("sendgrid events: %s", counts)
    return jsonify(counts), 200


# --- Twilio inbound SMS and status callbacks ----------------------------------------------------------


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 of the full URL followed by each POST key+value, sorted."""
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def _twilio_verified() -> dict[str, str] | None:
    """The form if the request carries a valid Twilio signature for our public URL, else None."""
    settings = _runtime().settings
    token, given = settings.twilio_auth_token, request.headers.get("X-Twilio-Signature", "")
    if not token or not given:
        return None
    # Behind a proxy request.url is internal; Twilio signed the public URL it was given (APP_URL + path).
    query = request.query_string.decode()
    url = settings.app_url + request.path + (f"?{query}" if query else "")
    form = {k: request.form[k] for k in request.form}  # Twilio never repeats a parameter
    if hmac.compare_digest(twilio_signature(token, url, form), given):
        return form
    return None


def _twiml(message: str | None = None) -> Response:
    inner = f"<Message>{escape(message)}</Message>" if message else ""
    return Response(
        f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>', mimetype="text/xml"
    )


@bp.post("/sms/inbound")
def sms_inbound() -> Response | tuple[Response, int]:
    form = _twilio_verified()
    if form is None:
        return _refuse(401, "invalid or missing X-Twilio-Signature")
    try:
        number = to_e164(form.get("From", ""))
    except ValueError:
        return _twiml()  # short codes, alphanumeric senders: nothing of ours to suppress
    with _runtime().sessions.begin() as session:
        result = suppress.sms_inbound(session, number, form.get("Body", ""))
    log.info("inbound sms: %s for %d store(s)", result.action or "no keyword", len(result.store_ids))
    if result.action == "help":
        names = " / ".join(result.store_names) or "Cart reminders"
        return _twiml(f"{names}: cart reminders. Reply STOP to unsubscribe.")
    # STOP and START: Twilio's opt-out handling answers the shopper itself; a second reply would be spam.
    return _twiml()


@bp.post("/sms/status")
def sms_status() -> tuple[Response, int]:
    form = _twilio_verified()
    if form is None:
        return _refuse(401, "invalid or missing X-Twilio-Signature")
    sid, status = form.get("MessageSid", ""), form.get("MessageStatus", "")
    if not sid or not status:
        return _refuse(400, "MessageSid and MessageStatus are required")
    with _runtime().sessions.begin() as session:
        delivery_events.twilio_status(session, sid, status, form.get("ErrorCode") or None)
    return Response(status=204), 204  # unknown sids too: Twilio must not retry what we cannot match
