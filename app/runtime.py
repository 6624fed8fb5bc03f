"""The composition root shared by every process: engine, sessions, broker and actors, built from Settings."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from recovery.intake import subscriptions as push
from recovery.consent import delivery_events, suppress
from recovery.sequence.abandonment import Abandoner
from recovery.sending.channels import Channel, OutboxChannel
from recovery.sending.channels.sendgrid import SendGridChannel
from recovery.sending.channels.smtp import SmtpChannel, SmtpConfig
from recovery.sending.channels.twilio_sms import TwilioSmsChannel
from recovery.sending.channels.webpush import WebPushChannel
from recovery.messages.compose import Composer
from recovery.consent import pseudonym
from recovery.storage.db import dispose, make_engine, make_sessionmaker
from recovery.intake.deliveries import PROCESS_ACTOR
from recovery.messages.links import LinkSigner
from recovery.sending.send import Sender
from recovery.config.settings import Settings
from recovery.sequence.timing import Timing

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    broker: dramatiq.Broker
    sender: Sender
    abandoner: Abandoner
    timing: Timing
    #: connectors.shopify.services.ShopifyServices, or None without Shopify app credentials.
    shopify: Any = None
    _worker: dramatiq.Worker | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def enqueue(self, actor_name: str, args: Sequence[Any]) -> None:
        """Send a job for rows already committed; a broker outage is logged, and the sweeper re-sends."""
        try:
            self.broker.get_actor(actor_name).send(*args)
        except Exception:  # any broker failure: the committed row is the source of truth
            log.exception("enqueue of %s failed after commit; left for the dispatcher's sweep", actor_name)

    def hand_off_delivery(self, delivery_pk: int) -> None:
        """A webhook delivery was just stored (committed): get it processed. In relay mode the
        dispatcher's relay enqueues it (see Settings.intake_relay); otherwise it is enqueued now."""
        if not self.settings.intake_relay:
            self.enqueue(PROCESS_ACTOR, [delivery_pk])

    def broker_ok(self) -> tuple[bool, str]:
        if isinstance(self.broker, RedisBroker):
            try:
                self.broker.client.ping()
            except Exception as exc:  # any redis failure means "not reachable" for the health check
                return False, type(exc).__name__
            return True, "redis"
        return True, "in-process"

    def start_embedded_worker(self, threads: int = 2) -> None:
        """Embedded default: consume the in-process queue from threads of this process."""
        if self._worker is None:
            self._worker = dramatiq.Worker(self.broker, worker_threads=threads, worker_timeout=100)
            self._worker.start()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._worker is not None:
            self._worker.stop(timeout=5000)
            self._worker = None
        self.broker.close()
        dispose(self.engine)


def build_broker(settings: Settings) -> dramatiq.Broker:
    if settings.redis_url:
        return RedisBroker(url=settings.redis_url, heartbeat_timeout=int(settings.broker_heartbeat_timeout * 1000))
    return StubBroker()


def build_channels(settings: Settings, sessions: sessionmaker[Session] | None = None) -> dict[str, Channel]:
    """One adapter per channel from the provider keys present; a missing or unusable key selects the outbox.

    email: SENDGRID_API_KEY → SendGrid, else SMTP_URL → SMTP, else outbox. sms: TWILIO_ACCOUNT_SID +
    TWILIO_AUTH_TOKEN + (TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM) → Twilio. push: VAPID_PRIVATE_KEY +
    VAPID_SUBJECT → web push. `sessions` lets adapters record what the provider told them (opt-outs, gone
    subscriptions).
    """
    outbox = OutboxChannel(settings.outbox_dir, message_domain=_host(settings.app_url))
    channels: dict[str, Channel] = {"email": outbox, "sms": outbox, "push": outbox}
    for name, make in (("email", _email_channel), ("sms", _sms_channel), ("push", _push_channel)):
        try:
            adapter = make(settings, sessions)
        except (ValueError, TypeError) as exc:  # a malformed key or URL must not take the app down
            log.error("%s provider misconfigured (%s); using the local outbox", name, type(exc).__name__)
            adapter = None
        if adapter is not None:
            channels[name] = adapter
    log.info("channels: %s", ", ".join(f"{k}={type(v).__name__}" for k, v in channels.items()))
    return channels


def _email_channel(settings: Settings, sessions: sessionmaker[Session] | None) -> Channel | None:
    if settings.sendgrid_api_key:
        return SendGridChannel(
            settings.sendgrid_api_key,
            base_url=settings.sendgrid_base_url,
            asm_group_id=settings.sendgrid_asm_group_id,
            on_outcome_unknown=_outcome_unknown(sessions, events_will_tell=True),
        )
    if settings.smtp_url:
        return SmtpChannel(SmtpConfig.from_url(settings.smtp_url), message_domain=_host(settings.app_url))
    return None


def _sms_channel(settings: Settings, sessions: sessionmaker[Session] | None) -> Channel | None:
    s = settings
    if not (s.twilio_account_sid and s.twilio_auth_token and (s.twilio_messaging_service_sid or s.twilio_from)):
        return None

    def opted_out(message_id: int) -> None:  # Twilio 21610: the number texted STOP to our sender
        if sessions is not None:
            try:
                with sessions.begin() as session:
                    suppress.sms_opted_out(session, message_id)
            except Exception:  # the refusal itself is still recorded by the Sender; the next STOP/21610 retries
                log.exception("message %s: could not record Twilio's opt-out", message_id)

    return TwilioSmsChannel(
        s.twilio_account_sid,
        s.twilio_auth_token,
        from_number=s.twilio_from,
        messaging_service_sid=s.twilio_messaging_service_sid,
        status_callback=f"{s.app_url}/sms/status",
        base_url=s.twilio_base_url,
        on_unsubscribed=opted_out,
        on_outcome_unknown=_outcome_unknown(sessions, events_will_tell=False),
    )


def _push_channel(settings: Settings, sessions: sessionmaker[Session] | None) -> Channel | None:
    if not (settings.vapid_private_key and settings.vapid_subject):
        return None

    def gone(endpoint: str) -> None:
        if sessions is not None:
            try:
                with sessions.begin() as session:
                    push.delete_subscription(session, endpoint)
            except Exception:  # a stale row only costs one more 410 later
                log.exception("could not delete a gone push subscription")

    return WebPushChannel(
        settings.vapid_private_key,
        settings.vapid_subject,
        on_gone=gone,
        on_outcome_unknown=_outcome_unknown(sessions, events_will_tell=False),
        allow_private=settings.allow_private_hosts,
    )


def _outcome_unknown(
    sessions: sessionmaker[Session] | None, *, events_will_tell: bool
) -> Callable[[int], None] | None:
    """A provider read timeout: record it on the row (recovery.consent.delivery_events.outcome_unknown) in its own commit."""
    if sessions is None:
        return None

    def record(message_id: int) -> None:
        try:
            with sessions.begin() as session:
                delivery_events.outcome_unknown(session, message_id, events_will_tell=events_will_tell)
        except Exception:  # the Sender still records the send as failed/sent; only the exact wording is lost
            log.exception("message %s: could not record an unknown send outcome", message_id)

    return record


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "cartresq.local"


def build_runtime(
    settings: Settings, *, channels: dict[str, Channel] | None = None, seed: int | None = None
) -> Runtime:
    """Nothing here connects yet: engines, pools and Redis clients connect on first use."""
    import dataclasses
    import random

    from app.sendtime import LazySendTime
    from app.actors import declare_actors
    from recovery.messages.subjects import subject_writer

    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    broker = build_broker(settings)
    timing = Timing(settings.time_scale)
    composer = Composer(LinkSigner(settings.secret_key), settings.app_url, f"reminders@{_host(settings.app_url)}")
    composer = dataclasses.replace(composer, subjects=subject_writer(settings))  # None without OPENAI_API_KEY
    from connectors.shopify import services as shopify_services

    shopify = shopify_services.build(settings, sessions, timing)  # None without Shopify app credentials
    from connectors import offers as platform_offers

    # Offer codes go to the provider of each store's platform (Shopify discounts, WooCommerce coupons).
    composer = dataclasses.replace(
        composer, offers=platform_offers.build(settings, sessions, shopify.offers if shopify else None)
    )
    from connectors import catalog as platform_catalog
    from connectors.shopify.catalog import ShopifyCatalog

    # Tracker carts' lines are confirmed on each store's platform before a message shows them.
    composer = dataclasses.replace(composer, catalog=platform_catalog.build(
        settings, sessions, ShopifyCatalog(shopify.offers) if shopify else None
    ))
    from connectors.shopify.recommendations import ShopifyRelated

    # Shopify's own related products while a store has too few orders (the storefront's public endpoint),
    # where the app is a Shopify app (as the catalog lookup): never for the demo or a WooCommerce-only install.
    if shopify:
        composer = dataclasses.replace(composer, related=ShopifyRelated(
            allow_private=settings.allow_private_hosts, base=settings.shopify_admin_base))
    sender = Sender(channels=channels or build_channels(settings, sessions), composer=composer, timing=timing)
    from recovery.billing.usage import limits_for

    abandoner = Abandoner(
        LazySendTime(settings.model_dir / "send_time.onnx"), timing, random.Random(seed), epsilon=settings.explore_epsilon,
        limits=limits_for(settings.billing, settings.billed_platforms),  # None with CARTRESQ_BILLING=off
    )
    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        broker=broker,
        sender=sender,
        abandoner=abandoner,
        timing=timing,
        shopify=shopify,
    )
    # The key of the opt-outs kept after a redaction (recovery/consent/pseudonym.py), for the core's sessions.
    runtime.sessions.configure(
        info={"enqueue": runtime.enqueue, "pseudonym_key": pseudonym.derive_key(settings.secret_key)}
    )
    declare_actors(runtime)
    return runtime
