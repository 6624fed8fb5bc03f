"""Web push notifications for a recovery step: a short, honest title and body, and the signed restore link.

recovery/messages/content.py renders email and SMS and has no push variant, so the few lines live here, from
the same gettext catalogs (`push.<template>`; languages without copy fall back to English). A
notification says only what is true of every cart: it is saved, and where to tap. Prices, stock and
names stay out: a lock screen is not private.
"""

from __future__ import annotations

from sqlalchemy.orm import object_session

from recovery.messages import catalogs
from recovery.intake import subscriptions as push
from recovery.storage import tables as t
from recovery.sending.channels import OutboundPush
from recovery.messages.content import TEMPLATES, MessageContext, _sample_currency, sample_context

#: Browsers cut longer text (Chrome on Android shows about 40 / 120 characters); ours always fits.
TITLE_MAX = 50
BODY_MAX = 120
NO_SUBSCRIPTION = "no_push_subscription"

def _strings(tag: str) -> dict[str, str]:
    """This language's notification lines (recovery/messages/locale catalogs, `push.<template>`), else English."""
    strings = catalogs.strings(catalogs.copy_locale(tag).language)
    return {key.removeprefix("push."): text for key, text in strings.items() if key.startswith("push.")}


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def render_push(template: str, ctx: MessageContext) -> tuple[str, str]:
    """(title, body). The offer line only with a real code, as in email; otherwise the gentle reminder."""
    strings = _strings(ctx.locale)
    if template == "offer" and not (ctx.offer_code and ctx.offer_percent):
        template = "gentle_reminder"
    if template not in strings:
        raise ValueError(f"unknown template {template!r}")
    # Our strings are the format strings; store data only fills placeholders.
    body = strings[template].format(percent=ctx.offer_percent, code=ctx.offer_code)
    return _clip(ctx.store_name, TITLE_MAX), _clip(body, BODY_MAX)


def push_message(message: t.RecoveryMessage, cart: t.Cart, ctx: MessageContext) -> OutboundPush:
    """The notification for the cart's newest push subscription, looked up in the send job's session.

    Without one (never subscribed, or deleted after a 404/410) the row is cancelled right here, in the
    send job's check transaction: the Sender hands a row over only by a compare-and-set from `queued`,
    so a row cancelled here is never sent, and the empty subscription returned could not be sent anyway.
    """
    session = object_session(message)
    subscription = push.subscription_for_cart(session, cart.id) if session is not None else None
    if subscription is None:
        message.status, message.reason = "cancelled", NO_SUBSCRIPTION
        return OutboundPush(message.id, cart.id, message.step, {}, "", "", ctx.restore_url)
    title, body = render_push(message.template, ctx)
    return OutboundPush(message.id, cart.id, message.step, subscription, title, body, ctx.restore_url)


def preview_push(template: str, locale: str = "en-US") -> tuple[str, str]:
    """(title, body) of the web push notification for the sample cart."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; expected one of {TEMPLATES}")
    return render_push(template, sample_context(locale, _sample_currency(locale)))
