"""What the broker still holds: the row ids carried by jobs that are queued, delayed or being worked on.

The dispatcher's lost-job sweep (recovery/dispatch.py `requeue_lost`, recovery/intake.py
`requeue_unprocessed`) asks this before it re-enqueues anything, so it tells a job that is only slow
(waiting behind a backlog, in a retry's delay, running) from one that is gone (Redis restarted without
persistence or flushed, an enqueue that failed after commit).

Dramatiq's Redis broker keeps every message in the hash `<namespace>:<queue>.msgs` (or `<queue>.DQ.msgs`
when delayed) from its enqueue until a worker acks it: while it waits in the queue, while a worker holds it
prefetched or runs it, and after that worker was killed (its unacked messages go back to the queue when its
heartbeat is stale). A message dead-lettered by Dramatiq itself (`.XQ`) will never run again: not counted.

Returns None when the broker cannot say (the in-process StubBroker hides jobs being run; Redis unreachable):
the sweep then falls back to age alone, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis, dq_name

log = logging.getLogger(__name__)


def _ids(args: Iterable[Any]) -> Iterable[int]:
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool):
            yield arg
        elif isinstance(arg, list):
            yield from (x for x in arg if isinstance(x, int) and not isinstance(x, bool))


def _reclaim_dead_workers(broker: RedisBroker, queue_name: str) -> None:
    """Dramatiq's own queue maintenance, now rather than by chance: the unacked messages of a worker whose
    heartbeat is older than the broker's `heartbeat_timeout` (killed, its host gone) go back to the queue.

    Dramatiq runs this on about one command in a thousand, so after a kill -9 the jobs a dead worker held could
    wait many minutes for a live worker's lucky fetch, while this sweep, seeing them still in `.msgs`, took them
    for slow and left them alone. Same Lua script, same rule (the heartbeat timeout), only not left to chance.
    """
    broker.scripts["dispatch"](keys=[broker.namespace], args=[
        "qsize", current_millis(), queue_name, broker.broker_id, broker.heartbeat_timeout,
        broker.dead_message_ttl, 1, broker._max_unpack_size(),
    ])  # fmt: skip


def pending_ids(broker: dramatiq.Broker, actor_names: Collection[str], scan_count: int = 1000) -> set[int] | None:
    """Ids in the arguments of every job of `actor_names` the broker still holds; None if it cannot tell."""
    if not isinstance(broker, RedisBroker):
        return None
    found: set[int] = set()
    try:
        for queue in {broker.get_actor(name).queue_name for name in actor_names}:
            for name in (queue, dq_name(queue)):
                _reclaim_dead_workers(broker, name)
                # HSCAN in steps: a backlog of many jobs never blocks Redis for one long command.
                for _id, raw in broker.client.hscan_iter(f"{broker.namespace}:{name}.msgs", count=scan_count):
                    try:
                        message = dramatiq.Message.decode(raw)
                    except Exception:  # noqa: BLE001 - not ours to judge; it cannot hide one of our rows
                        continue
                    if message.actor_name in actor_names:
                        found.update(_ids(message.args))
    except Exception as exc:  # noqa: BLE001 - Redis down (or an actor not declared here): the sweep goes by age
        log.warning("cannot inspect the broker's queues (%s); sweeping by age only", type(exc).__name__)
        return None
    return found
