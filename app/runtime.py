"""The composition root shared by every process: engine, sessions, broker and actors, built from Settings."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from recovery.abandonment import Abandoner
from recovery.channels import Channel, OutboxChannel
from recovery.compose import Composer
from recovery.db import make_engine, make_sessionmaker
from recovery.links import LinkSigner
from recovery.sending import Sender
from recovery.settings import Settings
from recovery.timing import Timing

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
    _worker: dramatiq.Worker | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def enqueue(self, actor_name: str, args: Sequence[Any]) -> None:
        """Send a job for rows already committed; a broker outage is logged, and the sweeper re-sends."""
        try:
            self.broker.get_actor(actor_name).send(*args)
        except Exception:  # any broker failure: the committed row is the source of truth
            log.exception("enqueue of %s failed after commit; left for the dispatcher's sweep", actor_name)

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
        self.engine.dispose()


def build_broker(settings: Settings) -> dramatiq.Broker:
    if settings.redis_url:
        return RedisBroker(url=settings.redis_url)
    return StubBroker()


def build_channels(settings: Settings) -> dict[str, Channel]:
    """Provider adapters come with the messaging work; without provider keys everything goes to the outbox."""
    outbox = OutboxChannel(settings.outbox_dir, message_domain=_host(settings.app_url))
    return {"email": outbox, "sms": outbox, "push": outbox}


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "cartresq.local"


def build_runtime(
    settings: Settings, *, channels: dict[str, Channel] | None = None, seed: int | None = None
) -> Runtime:
    """Nothing here connects yet: engines, pools and Redis clients connect on first use."""
    import random

    from app.sendtime import LazySendTime
    from app.worker import declare_actors

    engine = make_engine(settings.database_url)
    broker = build_broker(settings)
    timing = Timing(settings.time_scale)
    composer = Composer(LinkSigner(settings.secret_key), settings.app_url, f"reminders@{_host(settings.app_url)}")
    sender = Sender(channels=channels or build_channels(settings), composer=composer)
    abandoner = Abandoner(LazySendTime(settings.model_dir / "send_time.onnx"), timing, random.Random(seed))
    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        broker=broker,
        sender=sender,
        abandoner=abandoner,
        timing=timing,
    )
    runtime.sessions.configure(info={"enqueue": runtime.enqueue})
    declare_actors(runtime)
    return runtime
