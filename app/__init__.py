"""CartResQ's processes and tools around the recovery core: the web edge (`app/web/`), the worker, the
dispatcher, the `cartresq` CLI, and the demo, drill and benchmark harnesses (`app/demo/`, `app/drill/`,
`app/bench/`). `create_app()` is the WSGI entry for gunicorn: `gunicorn 'app:create_app()'`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(*args: Any, **kwargs: Any) -> Flask:
    """The web app (app/web); imported on call, so the worker and the CLI do not load the web edge."""
    from app.web import create_app as build

    return build(*args, **kwargs)
