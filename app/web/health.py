"""Liveness with the reachability of the database and the broker."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy.exc import SQLAlchemyError

from recovery.storage.db import ping

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[object, int]:
    from app.web import runtime

    rt = runtime()
    try:
        ping(rt.engine)
        database = {"ok": True, "backend": rt.engine.dialect.name}
    except SQLAlchemyError as exc:
        database = {"ok": False, "backend": rt.engine.dialect.name, "error": type(exc).__name__}
    broker_ok, detail = rt.broker_ok()
    broker = {"ok": broker_ok, "backend" if broker_ok else "error": detail}
    healthy = database["ok"] and broker_ok
    return jsonify(status="ok" if healthy else "degraded", database=database, broker=broker), 200 if healthy else 503
