"""Recovery sequences: which messages a cart gets and when. Planning writes one row per message."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.orm import Session

from recovery.storage import tables as t
from recovery.model import Channel
from recovery.sequence.timing import Timing

TEMPLATES = ("gentle_reminder", "value_proposition", "offer", "final_call")


class SendTimeModel(Protocol):
    """The port to ml/: picks the best offset (hours after abandonment) among candidates."""

    def best_offset(self, cart: Mapping[str, float], offsets: Sequence[float]) -> float: ...


@dataclass(frozen=True)
class Step:
    step: int
    channel: str
    template: str
    #: Seconds after abandonment; None means "the model picks within the first-message window".
    delay: int | None
    min_total: Decimal | None = None
    #: A step switched off keeps its place (and its number) in the sequence but is never planned.
    enabled: bool = True

    def to_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "channel": self.channel,
            "template": self.template,
            "delay": self.delay,
            "min_total": None if self.min_total is None else str(self.min_total),
        }
        if not self.enabled:
            shown["enabled"] = False
        return shown


def default_sequence(sms_min_total: Decimal = Decimal("50")) -> tuple[Step, ...]:
    return (
        Step(1, Channel.EMAIL.value, "gentle_reminder", None),
        Step(2, Channel.EMAIL.value, "value_proposition", 24 * 3600),
        Step(3, Channel.SMS.value, "offer", 48 * 3600, min_total=sms_min_total),
        Step(4, Channel.EMAIL.value, "final_call", 72 * 3600),
    )


def parse_sequence(text: str | list[Any]) -> tuple[Step, ...]:
    """A store's own sequence: a JSON list of {channel, template, delay (seconds or null), min_total}."""
    data = json.loads(text) if isinstance(text, str) else text
    if not isinstance(data, list) or not 1 <= len(data) <= 8:
        raise ValueError("a sequence is a JSON list of 1 to 8 steps")
    steps = []
    for number, raw in enumerate(data, start=1):
        if not isinstance(raw, dict):
            raise ValueError(f"step {number} is not an object")
        channel, template, delay = raw.get("channel"), raw.get("template"), raw.get("delay")
        if channel not in {c.value for c in Channel}:
            raise ValueError(f"step {number}: channel must be email, sms or push")
        if template not in TEMPLATES:
            raise ValueError(f"step {number}: template must be one of {', '.join(TEMPLATES)}")
        if delay is not None and (not isinstance(delay, int) or isinstance(delay, bool) or delay < 0):
            raise ValueError(f"step {number}: delay is whole seconds after abandonment, or null for the model")
        if delay is None and number != 1:
            raise ValueError("only the first step's time can be left to the model")
        min_total, enabled = raw.get("min_total"), raw.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ValueError(f"step {number}: enabled is true or false")
        steps.append(Step(number, channel, template, delay, parse_min_total(number, min_total), enabled))
    if not any(step.enabled for step in steps):
        raise ValueError("at least one step must be on")
    if any(b.delay is not None and a.delay is not None and b.delay < a.delay for a, b in zip(steps, steps[1:])):
        raise ValueError("steps must be in time order")
    return tuple(steps)


def parse_min_total(number: int, raw: Any) -> Decimal | None:
    """A step's "only for carts above" total: a number, not negative (-50 would mean every cart)."""
    if raw is None:
        return None
    try:
        value = Decimal(str(raw).strip())
    except ArithmeticError:  # decimal.InvalidOperation
        value = Decimal("NaN")
    if not value.is_finite():
        raise ValueError(f"step {number}: {str(raw)[:32]!r} is not an amount such as 50")
    if value < 0:
        raise ValueError(f"step {number}: the cart total cannot be negative (or leave it empty for any total)")
    return value


def store_sequence(settings: Mapping[str, Any], *, switched_off: bool = False) -> tuple[Step, ...]:
    """The steps planned for a store (its own sequence, else the default); `switched_off` keeps the steps
    that are off too (the flow editor and `store show` list them)."""
    if settings.get("sequence"):
        steps = parse_sequence(settings["sequence"])
    else:
        steps = default_sequence(Decimal(str(settings["sms_min_cart_value"])))
    return steps if switched_off else tuple(step for step in steps if step.enabled)


def first_offsets(settings: Mapping[str, Any], candidates: Sequence[float]) -> list[float]:
    """Candidate offsets (hours) inside the store's first-message window."""
    low, high = settings["first_message_min"] / 3600, settings["first_message_max"] / 3600
    inside = [o for o in candidates if low <= o <= high]
    return inside or [low]


def step_applies(step: Step, cart: t.Cart, sms_allowed: bool, has_push: bool = False) -> str | None:
    """Why this step does not apply to this cart, or None.

    A push step is planned only for a cart with a push subscription (POST /push/subscribe); push never
    stands in for a missing email or phone: a store that wants push says so in its sequence.
    """
    if step.min_total is not None and cart.total <= step.min_total:
        return f"cart total not above {step.min_total}"
    if step.channel == Channel.SMS.value and not sms_allowed:
        return "no SMS consent"
    if step.channel == Channel.EMAIL.value and not cart.email:
        return "no email address"
    if step.channel == Channel.SMS.value and not cart.phone:
        return "no phone number"
    if step.channel == Channel.PUSH.value and not has_push:
        return "no push subscription"
    return None


def plan(
    cart: t.Cart,
    steps: Sequence[Step],
    first_offset_hours: float,
    timing: Timing,
    sms_allowed: bool,
    existing: dict[int, t.RecoveryMessage],
    has_push: bool = False,
    fit: Callable[[str, datetime], datetime] | None = None,
) -> list[dict[str, Any]]:
    """One row per applicable step: cancelled or planned rows in `existing` (the cart's rows by step) are
    re-armed in place; the new rows are returned as values for one bulk insert by the caller.

    Steps already sent, in flight or failed are never planned again.
    """
    assert cart.abandoned_at is not None
    new_rows = []
    for step in steps:
        if step_applies(step, cart, sms_allowed, has_push) is not None:
            continue
        seconds = first_offset_hours * 3600 if step.delay is None else step.delay
        due = cart.abandoned_at + timing.span(seconds)
        values = {
            "channel": step.channel, "template": step.template, "due_at": fit(step.channel, due) if fit else due,
            "status": "planned", "reason": None, "claimed_at": None,
        }
        row = existing.get(step.step)
        if row is None:
            new_rows.append({**values, "store_id": cart.store_id, "cart_id": cart.id, "step": step.step, "attempts": 0,
                             "created_at": cart.abandoned_at})
        elif row.status in ("planned", "cancelled"):
            for name, value in values.items():
                setattr(row, name, value)
    return new_rows


def cancel_pending(session: Session, cart_ids: list[int], reason: str) -> int:
    if not cart_ids:
        return 0
    result = session.execute(
        update(t.RecoveryMessage)
        # `queued` too: a claimed job not yet running re-reads the row and then does nothing.
        .where(t.RecoveryMessage.cart_id.in_(cart_ids), t.RecoveryMessage.status.in_(("planned", "queued")))
        .values(status="cancelled", reason=reason)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
