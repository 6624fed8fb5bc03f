"""The recovery core, grouped by the stages of the pipeline: intake (platform events and beacons become
carts) → sequence (abandoned carts get a planned sequence, or the holdout) → messages (what each step says)
→ sending (policy checks, channels) → measure (recovered revenue, lift). Beside the pipeline: consent
(opt-ins, opt-outs, privacy requests), config (process and per-store settings) and storage (database,
schema, locks). `model.py` is the common cart model every connector normalizes into.

Dependencies point inward: nothing here imports `app` or `connectors`.
"""
