"""The demo's simulated storefront on a simulated clock: shoppers arrive at their own local hours,
check out, buy, leave, and react to each message at the simulated time they read it.

Everything a shopper does is an event on one heap ordered by (simulated time, sequence); reactions
are drawn from a generator per (seed, shopper, step), so the same seed gives the same run.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import numpy as np

from app.demo import flows, payloads
from ml.features import candidate_matrix
from ml.sim_truth import abandon_hour_weights
from ml.simulator import SimShopper
from recovery.config.settings import Settings

SECRET = "demo-shopify-client-secret"
#: A shopper who does not abandon pays this many minutes after checking out: well inside the store's
#: idle time (1 h), so a completed checkout is never counted as an abandonment.
PAY_WITHIN_MINUTES = (2.0, 20.0)
ABANDON_AFTER = timedelta(hours=1)  # the store's default idle time; the demo keeps it
#: A browsing shopper's tracker beacons are sent this long after the checkout (its webhook is applied by then);
#: they carry their own times (the views before the checkout), so the cart's idle time is unchanged.
BEACON_DELAY = timedelta(minutes=5)


def arrival(seed: int, shopper: SimShopper, start: datetime) -> datetime:
    """When the shopper checks out: a local hour drawn from the simulator's abandonment hours, on
    the first local day whose that hour falls at or after `start`."""
    rng = np.random.default_rng([seed, 0xA771, shopper.index])
    hour = int(rng.choice(24, p=abandon_hour_weights()))
    minute = float(rng.uniform(0, 60))
    zone = ZoneInfo(shopper.timezone)
    local_day = start.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    at = (local_day + timedelta(hours=hour, minutes=minute)).astimezone(UTC)
    return at if at >= start else at + timedelta(days=1)


@dataclass
class Shop:
    seed: int
    client: httpx.Client
    shoppers: dict[str, SimShopper] = field(default_factory=dict)
    by_index: dict[int, SimShopper] = field(default_factory=dict)
    abandoned_at: dict[int, datetime] = field(default_factory=dict)  # when the store counts the cart idle
    bought: set[int] = field(default_factory=set)
    events: list[tuple[datetime, int, str, int]] = field(default_factory=list)
    seen_files: set[str] = field(default_factory=set)
    orders: int = 1000
    webhooks: list[tuple[str, dict]] = field(default_factory=list)  # type: ignore[type-arg]
    repeat: set[int] = field(default_factory=set)  # shoppers who ordered again after a cross-sell
    checked_out: dict[int, datetime] = field(default_factory=dict)
    _seq: int = 0

    def schedule(self, at: datetime, kind: str, index: int) -> None:
        self._seq += 1
        heapq.heappush(self.events, (at, self._seq, kind, index))

    def add(self, shopper: SimShopper, start: datetime) -> None:
        self.shoppers[shopper.email] = shopper
        self.by_index[shopper.index] = shopper
        self.schedule(arrival(self.seed, shopper, start), "checkout", shopper.index)

    def send_at(self, at: datetime, topic: str, payload: dict) -> None:  # type: ignore[type-arg]
        """The store's own webhook (catalog, fulfilment) at a simulated time."""
        self.webhooks.append((topic, payload))
        self.schedule(at, "webhook", len(self.webhooks) - 1)

    def next_event(self) -> datetime | None:
        return self.events[0][0] if self.events else None

    def fire_due(self, now: datetime) -> None:
        while self.events and self.events[0][0] <= now:
            at, _, kind, index = heapq.heappop(self.events)
            if kind == "webhook":
                self.post(*self.webhooks[index], at)
                continue
            shopper = self.by_index[index]
            if kind == "checkout":
                self.checkout(shopper, at)
            elif kind == "browse":
                self.browse(shopper)
            else:
                self.buy(shopper, at)

    def checkout(self, shopper: SimShopper, at: datetime) -> None:
        self.post("checkouts/create", payloads.checkout(self.seed, shopper, at, with_contact=True), at)
        self.abandoned_at[shopper.index] = at + ABANDON_AFTER
        self.checked_out[shopper.index] = at
        if flows.browsing(self.seed, shopper) is not None:  # its beacons once the checkout webhook is applied
            self.schedule(at + BEACON_DELAY, "browse", shopper.index)
        rng = np.random.default_rng([self.seed, 0xB0, shopper.index])
        if not shopper.abandons:
            self.schedule(at + timedelta(minutes=float(rng.uniform(*PAY_WITHIN_MINUTES))), "order", shopper.index)
        elif shopper.buys_unprompted_after_hours is not None:
            self.schedule(at + timedelta(hours=shopper.buys_unprompted_after_hours), "order", shopper.index)

    def browse(self, shopper: SimShopper) -> None:
        """The tracker's beacons of a shopper who viewed a product twice before checking out (POST /track)."""
        product = flows.browsing(self.seed, shopper)
        token = payloads.tokens(self.seed, shopper)[0]
        sid = hashlib.sha256(f"demo-sid:{self.seed}:{shopper.index}".encode()).hexdigest()[:24]
        for beacon in flows.view_beacons(payloads.SHOP, sid, product or 0, token, self.checked_out[shopper.index]):
            self.client.post("/track", json=beacon, headers={"Origin": f"https://{payloads.SHOP}"}).raise_for_status()

    def buy(self, shopper: SimShopper, at: datetime) -> None:
        if shopper.index in self.bought:
            return
        self.bought.add(shopper.index)
        self.orders += 1
        order = payloads.order(self.seed, shopper, at, self.orders)
        self.post("orders/create", order, at)
        shipped = flows.ship_at(at)
        self.send_at(shipped, "orders/fulfilled", flows.fulfilled(order, shipped))

    def buy_again(self, shopper: SimShopper, at: datetime) -> None:
        """A second order, after a cross-sell email (once per shopper)."""
        if shopper.index in self.repeat:
            return
        self.repeat.add(shopper.index)
        self.orders += 1
        self.post("orders/create", flows.repeat_order(self.seed, shopper, at, self.orders), at)

    def post(self, topic: str, payload: dict, at: datetime) -> None:  # type: ignore[type-arg]
        body = json.dumps(payload).encode()
        signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": payloads.SHOP,
            "X-Shopify-Webhook-Id": str(uuid.UUID(int=int(hashlib.sha256(body).hexdigest()[:32], 16))),
            "X-Shopify-Event-Id": str(uuid.UUID(int=int(hashlib.sha256(b"event:" + body).hexdigest()[:32], 16))),
            "X-Shopify-Triggered-At": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "X-Shopify-Hmac-Sha256": signature,
        }
        self.client.post("/webhooks/shopify", content=body, headers=headers).raise_for_status()

    def read_outbox(
        self, outbox: Path, settings: Settings, sent: Callable[[list[int]], dict[int, str | None]], now: datetime
    ) -> int:
        """React, at `now`, to each message the outbox holds that is committed as sent and not read
        yet (in message order). `sent` maps the committed ids to their flow. Returns how many were read."""
        fresh = sorted(p for p in outbox.glob("*/*") if p.name not in self.seen_files and p.suffix in {".eml", ".json"})
        ids = {path: int(match.group(1)) for path in fresh if (match := re.match(r"(\d+)-step", path.name))}
        committed = sent(list(ids.values())) if ids else {}
        read = 0
        for path in sorted(fresh, key=lambda p: (ids.get(p, 0), p.name)):
            if path in ids and ids[path] not in committed:
                continue  # written just before its row commits: next pass
            self.seen_files.add(path.name)
            read += 1
            if path.suffix == ".eml":
                message = message_from_bytes(path.read_bytes(), policy=policy.default)
                shopper = self.shoppers.get(str(message["To"]))
                html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
            else:
                data = json.loads(path.read_text())
                shopper = next((s for s in self.shoppers.values() if s.phone == data["to"]), None)
                html = data["body"]
            flow = committed.get(ids[path]) if path in ids else None
            again = flow == flows.CROSS_SELL  # after an order: a second one
            if shopper is None or (shopper.index in self.bought) != again:
                continue
            if flow in flows.REACTION_KEYS:
                step = flows.REACTION_KEYS[flow]
            else:
                step = int(re.search(r"-step(\d+)", path.stem).group(1)) if "-step" in path.stem else 1  # type: ignore[union-attr]
            self.respond(shopper, step, html, settings, now, again=again)
        return read

    def respond(
        self, shopper: SimShopper, step: int, html: str, settings: Settings, at: datetime, again: bool = False
    ) -> None:
        """The shopper's reaction to step N read at `at`: the hidden truth at the shopper-local hour of
        `at` and the hours since the store counted the cart abandoned, drawn from (seed, shopper, step).
        A flow message (`again`, or a step from flows.REACTION_KEYS) is news of its own, read as a reminder
        sent at once: the hours since abandonment are those of a first reminder at that instant, zero."""
        rng = np.random.default_rng([self.seed, 0xD3E0, shopper.index, step])
        abandoned = self.abandoned_at.get(shopper.index, at - timedelta(hours=1))
        fresh = again or step in flows.REACTION_KEYS.values()
        offset = 0.0 if fresh else max((at - abandoned).total_seconds() / 3600, 0.0)
        local = abandoned.astimezone(ZoneInfo(shopper.timezone))
        hour = local.hour + local.minute / 60
        row = candidate_matrix(shopper.features(hour, local.weekday()), [offset])[0]
        response = shopper.respond(row, rng)
        base = re.escape(settings.app_url)
        pixel = re.search(base + r"/o/[\w.\-]+", html)
        restore = re.search(base + r"/r/[\w.\-]+", html)
        if response.opened and pixel:
            self.client.get(pixel.group(0).removeprefix(settings.app_url))
        if response.clicked and restore:
            self.client.get(restore.group(0).removeprefix(settings.app_url))  # a 302 to the store; not followed
        if response.bought:
            (self.buy_again if again else self.buy)(shopper, at)
