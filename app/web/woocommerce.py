"""WooCommerce at the web edge: activation (`/auth/woocommerce...`) and webhook deliveries."""

from __future__ import annotations


import logging
from urllib.parse import urlsplit

from flask import Blueprint, jsonify, redirect, request
from sqlalchemy import delete, select
from werkzeug.urls import iri_to_uri

from app.web import jsonbody, pages
from connectors import woocommerce as woo
from connectors.woocommerce import activation
from connectors.woocommerce.api import WooClient, WooError, normalize_store_url
from connectors.woocommerce.intake import find_connection, record
from connectors.woocommerce.reconcile import reconcile_store
from recovery.storage import tables as t
from recovery.storage.crypto import Vault
from recovery.sending.netguard import check_public
from recovery.storage.tables import utcnow

log = logging.getLogger(__name__)
bp = Blueprint("woocommerce", __name__)

PAGE = """<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{ title }}</title>
<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem">
<h1 style="font-size: 1.4rem">{{ title }}</h1><p>{{ body }}</p>
{% if link %}<p><a href="{{ link }}">{{ link_text }}</a></p>{% endif %}</body></html>"""


def _page(
    title: str, body: str, status: int, link: str | None = None, link_text: str = ""
) -> tuple[str, int]:
    return pages.render(PAGE, title=title, body=body, link=link, link_text=link_text), status


def _rt():  # type: ignore[no-untyped-def]
    from app.web import runtime

    return runtime()


@bp.get("/auth/woocommerce")
def start():  # type: ignore[no-untyped-def]
    rt = _rt()
    try:
        store_url = normalize_store_url(
            request.args.get("store_url", ""), allow_http=rt.settings.woo_allow_http
        )
        iri_to_uri(store_url)  # the redirect's Location must be expressible (a host IDNA cannot encode: 400)
        if not rt.settings.allow_private_hosts:  # the callback will call this store: public addresses only
            host = urlsplit(store_url)
            check_public(host.hostname or "", host.port)
    except ValueError as exc:  # PrivateAddress and UnicodeError are ValueErrors
        return _page("This store address cannot be used", f"{exc}.", 400)
    from app.web.track import new_row_refused

    if refused := new_row_refused("woo-activation"):  # each start stores a row (it expires in an hour)
        return refused
    with rt.sessions.begin() as session:
        url = activation.start(session, store_url, rt.settings.app_url, utcnow())
    return redirect(url, code=302)


@bp.post("/auth/woocommerce/callback")
def callback():  # type: ignore[no-untyped-def]
    """WooCommerce POSTs the new keys here; anything but exactly 200 makes it delete them."""
    rt = _rt()
    try:
        grant = activation.parse_grant(jsonbody.loads(request.get_data(cache=False) or b"null"))
    except ValueError as exc:  # json.JSONDecodeError and ActivationError both
        return jsonify(
            error="Bad Request",
            detail=str(exc) if isinstance(exc, activation.ActivationError) else "body is not valid JSON",
        ), 400
    now = utcnow()
    try:
        with rt.sessions.begin() as session:
            store_url = activation.claim(session, grant.user_id, now)
    except activation.ActivationError as exc:
        log.warning("woocommerce activation refused: %s", exc)
        return jsonify(error="Bad Request", detail=str(exc)), 400
    # The keys are confirmed before we keep them: this proves they work on the store we started with.
    client = WooClient(
        store_url, grant.consumer_key, grant.consumer_secret, allow_http=rt.settings.woo_allow_http,
        allow_private=rt.settings.allow_private_hosts, timeout=activation.CALLBACK_TIMEOUT, retries=False,
    )
    try:
        status = client.system_status()
    except WooError as exc:
        log.warning("woocommerce activation: keys not confirmed by the store (%s)", exc)
        return jsonify(error="Bad Request", detail="the keys were not accepted by the store"), 400
    finally:
        client.close()
    with rt.sessions.begin() as session:
        connection = activation.connect(
            session, Vault(rt.settings.encryption_keys), store_url, grant, grant.user_id, now
        )
        store = session.get(t.Store, connection.store_id)
        currency = (status.get("settings") or {}).get("currency") if isinstance(status, dict) else None
        if store is not None and isinstance(currency, str) and len(currency) == 3:
            store.currency = currency.upper()
    log.info("woocommerce store %s activated", connection.store_id)
    # Webhooks are made on the return page (and by the dispatcher's reconcile): the store is waiting
    # on this answer, and a small host may have no PHP worker free to serve our calls meanwhile.
    return "", 200


@bp.get("/auth/woocommerce/return")
def returned():  # type: ignore[no-untyped-def]
    rt = _rt()
    user_id = request.args.get("user_id", "")
    if request.args.get("success") != "1":
        return _page(
            "CartResQ was not connected",
            "The store did not grant access, so nothing was connected and no keys were kept. "
            "You can start again from the CartResQ page in your WordPress admin.",
            200,
        )
    # Activation ends in the merchant's account: a single-use link to create one or join an existing one. The
    # activation is consumed in the same transaction, so a replayed return URL (browser history, proxy logs)
    # never mints another link to this store.
    from app.web.merchant.accounts import new_link

    with rt.sessions.begin() as session:
        row = session.execute(
            delete(t.WooActivation)
            .where(t.WooActivation.token_hash == activation._hash(user_id), t.WooActivation.store_id.is_not(None))
            .returning(t.WooActivation.store_id, t.WooActivation.store_url)
        ).first()
        if row is not None:
            claim = f"{rt.settings.app_url}/app/claim/{new_link(session, 'claim', utcnow(), store_id=row.store_id)}"
    if row is None:
        return _page(
            "This activation is not known or was already used",
            "Sign in to CartResQ to manage this store, or start the connection again from your WordPress admin.",
            400,
        )
    report = reconcile_store(
        rt.sessions,
        rt.engine,
        Vault(rt.settings.encryption_keys),
        row.store_id,
        app_url=rt.settings.app_url,
        allow_http=rt.settings.woo_allow_http,
        hand_off=rt.hand_off_delivery,
        allow_private=rt.settings.allow_private_hosts,
        web_push=rt.settings.web_push_configured,
    )
    if report.error:
        return _page(
            "Connected, with a problem",
            "The keys work, but setting up webhooks failed; we retry automatically every few minutes. "
            "Next, set up your CartResQ account to manage reminders for this store.",
            200,
            claim,
            "Set up your CartResQ account",
        )
    return _page(
        "CartResQ is connected",
        "Orders and carts from your store now reach CartResQ. Next, set up your CartResQ account to manage "
        "reminders for this store.",
        200,
        claim,
        "Set up your CartResQ account",
    )


@bp.post("/webhooks/woocommerce/<store_key>")
def webhook(store_key: str):  # type: ignore[no-untyped-def]
    rt = _rt()
    body = request.get_data(cache=False)  # raw bytes, before any parsing; over the limit → 413
    headers = request.headers
    with rt.engine.connect() as conn:
        found = find_connection(conn, store_key[:64])
        if found is None:
            return jsonify(error="Not Found", detail="unknown store"), 404
        if woo.ping_webhook_id(body, headers) is not None:
            # Sent on creation and activation; WooCommerce wants exactly 200. It is not an event.
            return jsonify(status="pong"), 200
        topic = (headers.get("X-WC-Webhook-Topic") or "").strip()[:64]
        sealed = conn.execute(
            select(t.WooWebhook.secret).where(t.WooWebhook.store_id == found.id, t.WooWebhook.topic == topic)
        ).scalar()
    secret = Vault(rt.settings.encryption_keys).open(sealed)["secret"] if sealed else None
    if not woo.verify(body, headers.get("X-WC-Webhook-Signature"), secret):
        log.warning("woocommerce webhook rejected: missing or invalid signature")
        return jsonify(error="Unauthorized", detail="missing or invalid X-WC-Webhook-Signature"), 401
    meta = woo.read_headers(headers)
    if isinstance(meta, str):
        return jsonify(error="Bad Request", detail=meta), 400
    try:
        payload = jsonbody.loads(body)
    except ValueError:
        return jsonify(error="Bad Request", detail="body is not valid JSON"), 400
    if not isinstance(payload, dict):
        return jsonify(error="Bad Request", detail="body is not a JSON object"), 400
    if meta.topic not in woo.TOPICS:
        log.info("woocommerce webhook %s: unhandled topic %s", meta.delivery_id, meta.topic)
        return jsonify(status="ignored", detail=f"topic {meta.topic} is not handled"), 200
    with rt.engine.begin() as conn:
        delivery_pk, status = record(
            conn,
            found,
            topic=meta.topic,
            delivery_id=woo.event_id(meta.webhook_id, body),  # never X-WC-Webhook-Delivery-ID: see event_id
            payload=payload,
            vault=Vault(rt.settings.encryption_keys),
            now=utcnow(),
        )
    if delivery_pk is not None:
        rt.hand_off_delivery(delivery_pk)  # after commit; if the broker is down the sweeper sends it
        if meta.topic.startswith("order."):  # a reminder already on its way reaches its provider first
            from recovery.intake.receipts import wait_for_hand_overs

            wait_for_hand_overs(rt.engine, delivery_pk)
    from recovery.measure import metrics

    metrics.webhook("woocommerce", meta.topic, status)
    return jsonify(status=status), 200
