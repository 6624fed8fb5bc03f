"""The recovery core: cart model, storage, intake and (later) the recovery loop.

Dependencies point inward: nothing here imports `app` or `connectors`.
"""
