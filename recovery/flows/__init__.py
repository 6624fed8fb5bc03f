"""Triggered flows (issue 22): price drop, back in stock, post-purchase cross-sell, browse abandonment
(docs/flows.md).

A flow is a recovery message with its own trigger. Its message is an ordinary `recovery_messages` row
(`flow` names it; `step` is FLOW_STEP_BASE + its `flow_events` id, so it is never a sequence step), sent
by the same dispatcher and send job, through the same last-mile checks (order since, consent,
suppression, quiet hours → next allowed time, shopper cap), unsubscribe, rendering and channels.

- `signals.py`: the worker that applies a catalog or order fact records what may trigger a flow.
- `fanout.py`: the dispatcher turns pending signals into messages (guard, holdout, plan).
- `browse.py`: the dispatcher's pass over product views that came due (browse abandonment).
- `plan.py`: the common part: the once-per-period unique key, the per-flow holdout, the message row.
- `checks.py`: what a flow message's pre-send check asks instead of "is the cart still abandoned".
- `products.py`: order lines, co-purchase counts, popularity fallback: the recommendations.
- `content.py`: what a flow message (and a reminder's "you may also like" block) shows.
- `report.py`: each flow's line in the performance report (sent → opened → clicked → ordered, lift).
"""

from __future__ import annotations

from datetime import timedelta

PRICE_DROP, BACK_IN_STOCK, CROSS_SELL, BROWSE = "price_drop", "back_in_stock", "cross_sell", "browse_abandonment"
FLOWS = (PRICE_DROP, BACK_IN_STOCK, CROSS_SELL, BROWSE)
CART = "cart"  # the abandoned-cart sequence's own messages
#: A flow message's step: this plus its flow event's id. Sequence steps are 1..8.
FLOW_STEP_BASE = 1000
#: Once per subject (variant, order, product) per shopper per flow in this period.
ONCE_PER = timedelta(days=30)
#: A flow message moved (quiet hours, shopper cap) later than this after it was planned is no longer news.
USEFUL_LIFE = timedelta(days=3)


def is_flow(flow: str | None) -> bool:
    return bool(flow) and flow != CART
