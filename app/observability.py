"""Metrics, logs and error reports of every process (web, worker, dispatcher).

- GET /metrics: Prometheus text format, behind the operator check (app/web/operator.py). Under gunicorn with
  several workers set PROMETHEUS_MULTIPROC_DIR (an empty directory, cleared at each start) so the figures of
  all workers are summed; otherwise the process's own registry.
- Logs: one JSON object per line (CARTRESQ_LOG_FORMAT=json, the default; `text` for a terminal) with time,
  level, logger, message, process and, in the web tier, the request id (X-Request-Id if the caller sent a
  sane one, else a new one, echoed in the answer). Messages never carry emails, phones, tokens or payloads
  (the code logs ids, topics and exception types); the formatter adds nothing from the request.
- Sentry, only when SENTRY_DSN is set: send_default_pii off, no local variables, and request bodies,
  cookies, headers, query strings and user data stripped from every event before it leaves.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import uuid
from typing import Any

from flask import Blueprint, Flask, Response, g, has_request_context, request

from app.web.operator import require_operator

bp = Blueprint("observability", __name__)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@bp.get("/metrics")
@require_operator
def metrics() -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), 200, {"Content-Type": CONTENT_TYPE_LATEST})


def install(app: Flask) -> None:
    """Request ids on every request and answer, and the /metrics route."""
    app.register_blueprint(bp)

    @app.before_request
    def _request_id() -> None:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        if "request_id" in g:
            response.headers["X-Request-Id"] = g.request_id
        return response


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id") if has_request_context() else None
        return True


def configure_logging(fmt: str = "json", level: int = logging.INFO) -> None:
    """The root logger of this process: JSON lines (or text) on stderr, with the request id. Idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        # ours from an earlier call, or the plain stderr one the CLI's basicConfig made: one line per event
        plain = type(handler) is logging.StreamHandler and getattr(handler, "stream", None) is sys.stderr
        if getattr(handler, "_cartresq", False) or plain:
            root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler._cartresq = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    if fmt == "text":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
            timestamp=False,
        ))  # fmt: skip
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request at INFO: a second line per message a worker hands to SendGrid or Twilio (the
    # send itself is logged by recovery/sending/send.py), formatted and written in the send thread. Issue 24:
    # the worker's log calls were 6 % of a send thread's wall time at 120-230 messages/s. Its warnings stay.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))


_SCRUBBED = ("data", "cookies", "headers", "query_string", "env")


def scrub(event: dict[str, Any], hint: Any = None) -> dict[str, Any]:
    """A Sentry event without anything that may hold personal data: the request's body, cookies, headers
    and query string, the user, and breadcrumbs' data (log messages stay: they carry ids and types only)."""
    req = event.get("request")
    if isinstance(req, dict):
        for key in _SCRUBBED:
            req.pop(key, None)
    event.pop("user", None)
    for crumb in (event.get("breadcrumbs") or {}).get("values", []) if isinstance(event.get("breadcrumbs"), dict) else []:
        crumb.pop("data", None)
    return event


def init_sentry(dsn: str | None, process: str) -> bool:
    """Error reports when SENTRY_DSN is set; False (nothing done) otherwise."""
    if not dsn:
        return False
    import sentry_sdk

    sentry_sdk.init(
        dsn=dsn, send_default_pii=False, include_local_variables=False, max_request_body_size="never",
        before_send=scrub, server_name=process, traces_sample_rate=0.0,
    )  # fmt: skip
    return True


def setup_process(settings: Any, process: str) -> None:
    """Logging and error reports of one process; called by each composition root's entry point."""
    configure_logging(settings.log_format)
    init_sentry(settings.sentry_dsn, process)
