"""A bare baseline for the ingest benchmark: `POST /_bench/bare` reads the body and answers an empty 200.

Registered only when the process runs with `CARTRESQ_BENCH_BARE=1` (set by app/bench/ingest.py for its own
gunicorn), so it is served by the same server, workers and Flask stack as the webhooks, and nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from flask import Blueprint, Flask, request

bp = Blueprint("bench_bare", __name__)


@bp.post("/_bench/bare")
def bare() -> tuple[str, int]:
    request.get_data(cache=False)  # read the body, as the webhook endpoint does
    return "", 200


def register(app: Flask, environ: Mapping[str, str] | None = None) -> None:
    """Add the bare endpoint to `app` when CARTRESQ_BENCH_BARE=1; otherwise do nothing."""
    env = os.environ if environ is None else environ
    if env.get("CARTRESQ_BENCH_BARE") == "1":
        app.register_blueprint(bp)
