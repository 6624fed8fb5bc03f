"""Turn a planned message and its cart into what a channel sends: rendered, personal, with signed links."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from recovery import tables as t
from recovery.channels import OutboundEmail, OutboundSms
from recovery.content import ItemView, MessageContext, render_email, render_sms
from recovery.links import LinkSigner
from recovery.store_settings import effective


@dataclass(frozen=True)
class Composer:
    links: LinkSigner
    app_url: str
    from_addr: str = "reminders@cartresq.local"

    def compose(self, store: t.Store, cart: t.Cart, message: t.RecoveryMessage) -> OutboundEmail | OutboundSms:
        """Raises ValueError when the message cannot be built (e.g. an address the email package refuses)."""
        settings = effective(store.settings or {})
        restore = f"{self.app_url}/r/{self.links.sign('restore', message.id, cart.id)}"
        unsubscribe_token = self.links.sign("unsubscribe", message.id, cart.id)
        context = MessageContext(
            store_name=settings["sender_name"] or store.name or store.domain,
            store_url=f"https://{store.domain}",
            postal_address=settings["postal_address"] or "",
            first_name=cart.first_name,
            locale=cart.locale or "en-US",
            currency=cart.currency,
            items=tuple(
                ItemView(
                    title=str(i["title"]),
                    variant_title=i.get("variant_title"),
                    quantity=int(i["quantity"]),
                    unit_price=Decimal(str(i["unit_price"])),
                    image_url=i.get("image_url"),
                )
                for i in cart.line_items
            ),
            total=cart.total,
            restore_url=restore,
            unsubscribe_url=f"{self.app_url}/u/{unsubscribe_token}",
            open_pixel_url=f"{self.app_url}/o/{self.links.sign('open', message.id, cart.id)}",
        )
        if message.channel == "sms":
            # No discount engine yet: the offer step goes out as a plain reminder rather than a made-up code.
            template = "gentle_reminder" if message.template == "offer" else message.template
            return OutboundSms(message.id, cart.id, message.step, cart.phone or "", render_sms(template, context))
        template = "gentle_reminder" if message.template == "offer" else message.template
        rendered = render_email(template, context)
        return OutboundEmail(
            message_id=message.id,
            cart_id=cart.id,
            step=message.step,
            to=cart.email or "",
            from_addr=self.from_addr,
            from_name=context.store_name,
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            unsubscribe_url=context.unsubscribe_url,
            unsubscribe_mailto=f"mailto:unsubscribe+{unsubscribe_token}@{self.from_addr.split('@')[-1]}",
            categories=("cart-recovery", f"step-{message.step}"),
        )
