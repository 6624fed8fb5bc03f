"""The web app behind a reverse proxy or load balancer that sets X-Forwarded-For/-Proto/-Host.

    gunicorn -k gevent -w 2 -b 127.0.0.1:8000 'app.web.proxied:create_app(hops=1)'

`hops` is how many proxies in front of gunicorn append to those headers (one nginx: 1; a cloud load
balancer and nginx: 2). Werkzeug's ProxyFix then takes the client address (the per-IP limit of
POST /track), the scheme and the host from them. Trust only as many hops as you run: a client can send
its own X-Forwarded-For, and with too many hops it would choose the address it is limited by.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def create_app(hops: int = 1, **kwargs: Any) -> Flask:
    from app import create_app as make_app

    if hops < 1:
        raise ValueError("hops is the number of proxies in front of the app, at least 1")
    app = make_app(**kwargs)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    return app
