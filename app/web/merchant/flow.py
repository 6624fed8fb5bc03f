"""The flow editor: the sequence as steps, send time, offer, quiet hours, caps and holdout.

Every value is validated by `recovery.config.store_settings` through `recovery.config.stores.set_settings`, the code
`cartresq store set` runs; errors come back next to their field and nothing is saved while one remains.
Without JavaScript every action (add, remove, move, reset) is a submit button of the one form.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import abort, redirect, render_template, request, url_for

from app.web.merchant import bp, settings_form
from app.web.merchant.context import current_store, merchant_required
from recovery.messages.content import TEMPLATES
from recovery.sending.policy.hours import SMS_LEGAL
from recovery.sequence.plan import parse_min_total, store_sequence
from recovery.config.store_settings import SPECS, SettingError, effective, format_duration, parse_duration

FIELDS = ("offer_percent", "offer_window", "offer_arms", "margin_percent", "first_message_min", "first_message_max", "email_quiet_hours",
          "sms_window", "shopper_cap", "holdout_percent", "sms_enabled",
          "price_drop", "price_drop_threshold", "back_in_stock", "cross_sell", "cross_sell_after",
          "browse_abandonment", "browse_abandonment_after", "recommendations_in_reminders")
#: On/off settings: a checkbox each, sent as "on" or "off" (an unticked box sends nothing).
SWITCHES = ("sms_enabled", "price_drop", "back_in_stock", "cross_sell", "browse_abandonment",
            "recommendations_in_reminders")
DURATIONS = ("offer_window", "first_message_min", "first_message_max", "cross_sell_after", "browse_abandonment_after")
CHANNELS = ("email", "sms", "push")
MAX_STEPS = 8


def human(seconds: int | None) -> str:
    """3600 → '1 h', 86400 → '1 d': the form's way of writing a duration (the parser reads both)."""
    if seconds is None:
        return ""
    text = format_duration(int(seconds))
    return f"{text[:-1]} {text[-1]}"


def _shown(key: str, value: Any) -> str:
    if key in DURATIONS:
        return human(value)
    if key in SWITCHES:
        return "on" if value else "off"
    return SPECS[key].show(value)


def _from_store(stored: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str], bool]:
    values = effective(stored)
    steps = [{"channel": s.channel, "template": s.template, "delay": human(s.delay),
              "min": "" if s.min_total is None else str(s.min_total), "on": s.enabled}
             for s in store_sequence(values, switched_off=True)]
    model = bool(steps) and store_sequence(values, switched_off=True)[0].delay is None
    return steps, {key: _shown(key, values[key]) for key in FIELDS}, model


def _from_form() -> tuple[list[dict[str, Any]], dict[str, str], bool]:
    raw = request.form.get("steps", "0") or "0"
    if not raw.isdigit() or len(raw) > 3:
        abort(400, "steps must be a whole number")
    count = min(int(raw), MAX_STEPS + 1)
    steps = []
    for n in range(1, count + 1):
        steps.append({"channel": request.form.get(f"step-{n}-channel", "email")[:16],
                      "template": request.form.get(f"step-{n}-template", "gentle_reminder")[:32],
                      "delay": request.form.get(f"step-{n}-delay", "")[:32].strip(),
                      "min": request.form.get(f"step-{n}-min", "")[:32].strip(),
                      "on": bool(request.form.get(f"step-{n}-on"))})
    fields = {key: request.form.get(key, "")[:200] for key in FIELDS}
    for key in SWITCHES:
        fields[key] = "on" if request.form.get(key) else "off"
    return steps, fields, bool(request.form.get("model_first"))


def _edit(steps: list[dict[str, Any]], op: str) -> int | None:
    """Apply an add/move/remove button; "remove:N" only asks (the step number to confirm), and
    "remove-confirmed:N" removes it."""
    verb, _, number = op.partition(":")
    index = int(number) - 1 if number.isdigit() else -1
    if verb == "add" and len(steps) < MAX_STEPS:
        steps.append({"channel": "email", "template": "final_call", "delay": "", "min": "", "on": True})
    elif verb == "remove" and 0 <= index < len(steps) and len(steps) > 1:
        return index + 1
    elif verb == "remove-confirmed" and 0 <= index < len(steps) and len(steps) > 1:
        steps.pop(index)
    elif verb == "up" and 0 < index < len(steps):
        steps[index - 1], steps[index] = steps[index], steps[index - 1]
    elif verb == "down" and 0 <= index < len(steps) - 1:
        steps[index + 1], steps[index] = steps[index], steps[index + 1]
    return None


def _step_errors(steps: list[dict[str, Any]], model: bool) -> dict[str, str]:
    """Each step's delay and minimum total checked on its own (the CLI's parsers), errors keyed by field."""
    errors = {}
    for n, step in enumerate(steps, start=1):
        if step["delay"] and not (n == 1 and model):
            try:
                parse_duration(step["delay"], bare_seconds=False)
            except SettingError as exc:
                errors[f"step-{n}-delay"] = str(exc)
        elif not step["delay"] and not (n == 1 and model):
            errors[f"step-{n}-delay"] = ("give its delay after abandonment, e.g. 1 d" if n > 1 else
                                         "give its delay, or let the send-time model choose it")
        if step["min"]:
            try:
                parse_min_total(n, step["min"])
            except ValueError as exc:
                errors[f"step-{n}-min"] = str(exc).removeprefix(f"step {n}: ")
    return errors


def _sequence_json(steps: list[dict[str, Any]], model: bool) -> str:
    raw = [{"channel": step["channel"], "template": step["template"],
            "delay": None if n == 1 and model else step["delay"] or None,
            "min_total": step["min"] or None, "enabled": step["on"]} for n, step in enumerate(steps, start=1)]
    return json.dumps(raw)


def _by_step(errors: dict[str, str]) -> dict[str, str]:
    """A sequence error about one step ("step 2: ...") shown at that step."""
    problem = errors.get("sequence", "")
    match = re.match(r"step (\d+): (.*)", problem, re.S)
    if match:
        del errors["sequence"]
        errors[f"step-{match[1]}"] = match[2]
    return errors


def _save(store_id: int, steps: list[dict[str, Any]], fields: dict[str, str], model: bool) -> dict[str, str]:
    """Every error at once (each step's fields, the sequence, every setting); saved only when there is none,
    and then only the values that differ from those in force."""
    errors = _step_errors(steps, model)
    values = {key: fields[key] for key in FIELDS}
    if not errors:
        values["sequence"] = _sequence_json(steps, model)
    errors.update(settings_form.check(values))
    if not errors:
        _, errors = settings_form.apply(store_id, values, only_changed=True)
    return _by_step(errors)


@bp.route("/flow", methods=["GET", "POST"])
@merchant_required
def flow() -> Any:
    store = current_store()
    errors: dict[str, str] = {}
    confirm = None  # the step whose removal is asked about
    saved = request.args.get("saved") == "1"
    if request.method == "GET":
        steps, fields, model = _from_store(settings_form.stored(store.id))
    else:
        op = request.form.get("op", "save")
        if op.startswith("reset:"):
            key = op.partition(":")[2]
            errors = settings_form.reset(store.id, key)
            if not errors:
                return redirect(url_for("merchant.flow", store=request.args.get("store"), saved=1) + "#" + key, 303)
            steps, fields, model = _from_form()
        else:
            steps, fields, model = _from_form()
            confirm = _edit(steps, op)
            if confirm is None and op != "keep":
                errors = _save(store.id, steps, fields, model)
                if not errors:
                    return redirect(url_for("merchant.flow", store=request.args.get("store"), saved=1), 303)
    stored = settings_form.stored(store.id)
    defaults = {key: _shown(key, SPECS[key].default) for key in FIELDS}
    return render_template(
        "merchant/flow.html", steps=steps, fields=fields, model=model, errors=errors, saved=saved,
        channels=CHANNELS, templates=TEMPLATES, defaults=defaults, custom=set(stored), help=SPECS,
        sms_legal=SMS_LEGAL, max_steps=MAX_STEPS, confirm=confirm,
    ), 400 if errors else 200
