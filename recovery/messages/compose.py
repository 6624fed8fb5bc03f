"""Turn a planned message and its cart into what a channel sends: rendered, personal, with signed links."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session, object_session

from recovery.storage import tables as t
from recovery.messages import store_copy
from recovery.intake import verify
from recovery.intake.catalog import Known, item_views
from recovery.sending.channels import Outbound, OutboundEmail, OutboundSms
from recovery.messages.content import MessageContext, render_email, render_sms
from recovery.messages.links import LinkSigner
from recovery.sequence.offers import OfferProvider, offer_for
from recovery.messages.push_content import push_message
from recovery.config.store_settings import effective
from recovery.messages.subjects import SubjectWriter
from recovery.flows import is_flow
from recovery.flows.content import flow_facts
from recovery.flows.related import RelatedSource


@dataclass(frozen=True)
class Composer:
    links: LinkSigner
    app_url: str
    from_addr: str = "reminders@cartresq.local"
    #: Generated subject lines (OPENAI_API_KEY set); None: the deterministic lines.
    subjects: SubjectWriter | None = None
    #: Makes the offer step's discount code (None: the offer step goes out as a plain reminder).
    offers: OfferProvider | None = None
    #: Confirms a tracker cart's lines on the platform (recovery/intake/verify.py); None: they stay unconfirmed.
    catalog: verify.CatalogLookup | None = None
    #: The platform's related products while a store has too few orders (recovery/flows/related.py).
    related: RelatedSource | None = None

    def compose(
        self, store: t.Store, cart: t.Cart, message: t.RecoveryMessage, known: Known | None = None
    ) -> Outbound:
        """Raises ValueError when the message cannot be built (e.g. an address the email package refuses).
        `known`: catalog facts a send batch loaded for all of its carts (else loaded for this cart)."""
        settings = effective(store.settings or {})
        restore = f"{self.app_url}/r/{self.links.sign('restore', message.id, cart.id)}"
        unsubscribe_token = self.links.sign("unsubscribe", message.id, cart.id)
        session = object_session(message) if message.template == "offer" else None
        offer = offer_for(session, self.offers, store, cart, message) if session is not None else None
        items, total, currency = None, cart.total, cart.currency
        if verify.from_tracker(cart):  # the tracker's lines: only what the platform confirmed, at its prices
            found = verify.confirmed(object_session(cart), cart) if object_session(cart) else None
            items = found.items if found else ()
            total = found.total if found else Decimal(0)
            currency = (found.currency if found else None) or cart.currency
        flow, products, link = flow_facts(object_session(message), store, cart, message, settings)
        if link:  # cross-sell and browse: the store's page, not a cart to restore, and no cart lines
            restore, items, total = link, (), Decimal(0)
        context = MessageContext(
            store_name=settings["sender_name"] or store.name or store.domain,
            store_url=f"https://{store.domain}",
            postal_address=settings["postal_address"] or "",
            first_name=cart.first_name,
            locale=cart.locale or "en-US",
            currency=currency,
            # Price drops and low stock only from recorded catalog facts (the send job's session).
            items=items if items is not None else item_views(object_session(cart), store, cart, known, settings),
            total=total,
            restore_url=restore,
            unsubscribe_url=f"{self.app_url}/u/{unsubscribe_token}",
            open_pixel_url=f"{self.app_url}/o/{self.links.sign('open', message.id, cart.id)}",
            offer_code=offer.code if offer else None,
            offer_percent=offer.percent if offer else None,
            offer_expires_at=offer.ends_at if offer else None,
            flow=flow,
            products=products,
            own_copy=_own_copy(object_session(message), store.id, cart.locale or "en-US"),
        )
        if message.channel == "push":  # the browser's subscription, short text, the restore link
            return push_message(message, cart, context)
        if message.channel == "sms":
            # Without a real code (no offer set, no platform access) the offer step is a plain reminder.
            template = "gentle_reminder" if message.template == "offer" and offer is None else message.template
            return OutboundSms(message.id, cart.id, message.step, cart.phone or "", render_sms(template, context))
        template = "gentle_reminder" if message.template == "offer" and offer is None else message.template
        rendered = render_email(template, context)
        subject = self.subjects.subject(template, context, rendered.subject) if self.subjects else rendered.subject
        return OutboundEmail(
            message_id=message.id,
            cart_id=cart.id,
            step=message.step,
            to=cart.email or "",
            from_addr=self.from_addr,
            from_name=context.store_name,
            subject=subject,
            html=rendered.html,
            text=rendered.text,
            unsubscribe_url=context.unsubscribe_url,
            unsubscribe_mailto=f"mailto:unsubscribe+{unsubscribe_token}@{self.from_addr.split('@')[-1]}",
            reply_to=settings["reply_to"] or None,  # replies reach the merchant, not our sending domain
            categories=("cart-recovery", f"step-{message.step}") if not is_flow(message.flow)
            else ("cart-recovery", f"flow-{message.flow}"),
        )


def _own_copy(session: Session | None, store_id: int, locale: str) -> dict[str, str] | None:
    """The store's own text in the locale's language; read once per session (a send batch's transaction
    composes all of its messages in one session: one query per store and language, not one per message)."""
    if session is None:
        return None
    language = store_copy.language_of(locale)
    cache: dict[tuple[int, str], dict[str, str]] = session.info.setdefault("store_copy", {})
    if (store_id, language) not in cache:
        cache[(store_id, language)] = store_copy.load(session, store_id, language)
    return cache[(store_id, language)] or None
