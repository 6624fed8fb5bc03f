"""Every reason code the code base can record on a message has a sentence for the merchant (reasons.py).

The codes are found in the source, not listed by hand: every place under recovery/ that records a message's
reason (`x.reason = ...`, `reason=...`, `{"reason": ...}`, `Verdict(action, reason)`, the pre-send checks'
`reasons[id] = ...`/`out[id] = ...`, and the helpers that cancel with a reason). A literal is a code; an
f-string is a family of codes whose members are listed in FAMILIES; a variable must be one of PASSED_ON
(a parameter whose callers' literals are collected, or a value listed here with its source). A new site of
any kind fails this test until its codes have words.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.web.merchant.reasons import FLOW_NAMES, message_name, words
from recovery.flows import FLOWS
from recovery.model import CartStatus, Channel

ROOT = Path(__file__).resolve().parents[1] / "recovery"
#: Calls whose last positional argument is recorded as the reason of the messages they cancel or settle.
SINKS = {"cancel_pending": -1, "_cancel_pending": -1, "suppress_email": -1, "settle": 3}
#: In the pre-send checks (checks.py), the maps of message id → reason.
CHECK_MAPS = ("reasons", "out")
#: Files whose `reason` is not a message's (billing plan holds, a link error, suppression/consent rows).
NOT_MESSAGES = {"billing/usage.py", "messages/links.py", "consent/redaction.py"}

#: f-string families → every member the code can make (sources in the comments).
FAMILIES: dict[str, list[str]] = {
    "{} turned off": [f"{flow} turned off" for flow in FLOWS],  # recovery/flows/checks.py
    "cart is {}": [f"cart is {s.value}" for s in CartStatus],
    "bot:{}": ["bot:crawler_ua", "bot:crawler_address", "bot:disposable_domain", "bot:no_interaction"],
    "no {} address": ["no email address", "no sms address"],  # push has its own code
    "{}_cap_reached": [f"{c.value}_cap_reached" for c in Channel],
    "{}_past_useful_time": ["shopper_cap_past_useful_time", "quiet_hours_past_useful_time"],
    "rescheduled: {}": ["rescheduled: shopper_cap", "rescheduled: quiet_hours", "rescheduled: not_yet",
                        "rescheduled: order_receipt_pending"],
    "cannot compose: {}": ["cannot compose: not an email address: 'x'"],
    "provider refused: {}": ["provider refused: sendgrid 400: invalid address"],
    "provider unavailable: {}": ["provider unavailable: sendgrid 503"],
    "gave up after 6 attempts; last: {}": ["gave up after 6 attempts; last: provider unavailable: twilio"],
}
#: Variables recorded as a reason, by file: where their values come from.
PASSED_ON: dict[tuple[str, str], list[str]] = {
    ("consent/engagement.py", "reason"): [],  # the suppression row's reason; the messages get "unsubscribed"
    ("consent/suppress.py", "reason"): [],  # suppress_email's parameter: its callers' literals are collected
    ("consent/suppress.py", "why"): [],  # _cancel_pending's parameter: likewise
    ("consent/delivery_events.py", "OUTCOME_UNKNOWN"): ["outcome_unknown"],
    ("messages/push_content.py", "NO_SUBSCRIPTION"): ["no_push_subscription"],
    ("sending/checks.py", "flow_reasons"): [],  # recovery/flows/checks.py's `out`, collected there
    ("sending/checks.py", "blocked"): ["no_email_consent", "email_consent_withdrawn",  # consent.email_block
                                       "no_email_consent_region_GB", "no_email_consent_region_DE"],
    ("sending/policy/__init__.py", "why or 'not_yet'"): ["shopper_cap", "quiet_hours", "not_yet"],
    ("sending/policy/caps.py", "reason"): [],  # settle's parameter: its callers' literals are collected
    ("sending/send.py", "reasons"): [],  # the pre-send checks' map, collected in sending/checks.py
    ("sending/send.py", "verdict.reason"): [],  # Verdict(...)'s reason, collected in sending/policy
    ("sending/marks.py", "bindparam('why')"): [],  # the f-strings passed as why= (send.py), collected as families
    ("sequence/plan.py", "None"): [],  # a re-planned message has no reason
    ("sequence/plan.py", "reason"): [],  # cancel_pending's parameter: its callers' literals are collected
}


def _values(node: ast.expr) -> list[tuple[str, str]]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [("code", node.value)]
    if isinstance(node, ast.JoinedStr):
        return [("family", "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values))]
    if isinstance(node, ast.IfExp):
        return _values(node.body) + _values(node.orelse)
    if isinstance(node, ast.Subscript):  # f"..."[:500]
        return _values(node.value)
    if isinstance(node, ast.BinOp) and isinstance(node.left, ast.Constant):  # "prefix" + column
        return [("family", f"{node.left.value}{{}}")]
    return [("var", ast.unparse(node))]


def _recorded(node: ast.AST, in_checks: bool) -> list[ast.expr]:
    found: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        for target in node.targets:
            unpacked = isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
            pairs = [(target, node.value)]
            if unpacked:
                pairs = list(zip(target.elts, node.value.elts, strict=False))
            for left, value in pairs:
                attribute = isinstance(left, ast.Attribute) and left.attr == "reason"
                check_map = isinstance(left, ast.Subscript) and getattr(left.value, "id", "") in CHECK_MAPS
                if attribute or (in_checks and check_map):
                    found.append(value)
    elif isinstance(node, ast.Call):
        found += [k.value for k in node.keywords if k.arg in ("reason", "why")]
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", "")
        if name == "Verdict" and len(node.args) > 1:
            found.append(node.args[1])
        if name in SINKS and len(node.args) > (SINKS[name] if SINKS[name] >= 0 else 0):
            found.append(node.args[SINKS[name]])
    elif isinstance(node, ast.Dict):
        found += [v for k, v in zip(node.keys, node.values, strict=True)
                  if isinstance(k, ast.Constant) and k.value == "reason"]
    return found


def recorded_codes() -> tuple[set[str], set[str], set[tuple[str, str]]]:
    """(codes, families, variable sites) recorded anywhere under recovery/."""
    codes, families, variables = set(), set(), set()
    for path in sorted(ROOT.rglob("*.py")):
        where = path.relative_to(ROOT).as_posix()
        if where in NOT_MESSAGES:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for value in _recorded(node, path.name == "checks.py"):
                for kind, text in _values(value):
                    {"code": codes, "family": families}.get(kind, set()).add(text) if kind != "var" \
                        else variables.add((where, text))
    return codes, families, variables


CODES, FOUND_FAMILIES, VARIABLES = recorded_codes()
ALL = sorted(CODES | {c for f in FAMILIES.values() for c in f} | {c for v in PASSED_ON.values() for c in v})


def test_the_scan_finds_the_known_sites() -> None:
    # the scan itself works: codes from the checks, the policy, the flows and the suppressions
    assert {"holdout", "no_marketing_consent", "bounced", "spamreport", "sms stop", "order_receipt_pending",
            "superseded by a newer cart", "shopper_cap", "no_allowed_send_time"} <= CODES
    assert len(CODES) >= 30


def test_every_family_and_variable_site_is_accounted_for() -> None:
    new_families, new_variables = FOUND_FAMILIES - set(FAMILIES), VARIABLES - set(PASSED_ON)
    assert not new_families, f"new f-string reason codes: list their members in FAMILIES: {new_families}"
    assert not new_variables, f"new reasons passed in variables: say where they come from: {new_variables}"


@pytest.mark.parametrize("code", ALL)
def test_every_recordable_code_has_a_sentence(code: str) -> None:
    for shown in (code, f"rescheduled: {code}" if not code.startswith("rescheduled: ") else code):
        said = words(shown)
        assert said and not said.startswith("Technical reason"), f"{code!r} has no words in reasons.py"
        assert "_" not in said.split("(")[0], f"{code!r} shows a code: {said!r}"  # detail in brackets may


@pytest.mark.parametrize("flow", FLOWS)
def test_a_flow_message_is_named_by_its_flow_not_its_step_id(flow: str) -> None:
    class Message:
        step, channel, template = 1268, "email", flow

    Message.flow = flow  # type: ignore[attr-defined]
    assert message_name(Message()) == f"{FLOW_NAMES[flow]} (email)"

    class Step:
        flow, step, channel, template = "cart", 2, "sms", "value_proposition"

    assert message_name(Step()) == "Step 2 (sms, value proposition)"
