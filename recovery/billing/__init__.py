"""Plans and their limits: one policy for every platform (docs/billing.md).

- `plans.py`: the plans, the statuses that may start sequences, the reasons a cart is held back.
- `usage.py`: the limit check the abandoner runs in the transaction that plans first messages, and the
  figures the merchant app shows (usage, banner).
- `subscriptions.py`: applying what a payment provider says (Shopify, Stripe, the operator) to a store.
Payment providers themselves live in connectors/ (Shopify Billing API, Stripe); this package knows none.
"""
