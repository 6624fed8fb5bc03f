"""A real HTTP server in a thread that speaks like a provider: tests script its answers, it records requests."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

Handler = Callable[[Request], Response]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    form: dict[str, str]


@dataclass
class FakeServer:
    """`default` answers every request unless a scripted answer is queued; `sleep` delays before answering."""

    default: Handler
    script: list[Handler | float] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data(cache=True)
        self.requests.append(
            Recorded(
                request.method, request.full_path.rstrip("?"), dict(request.headers), body, dict(request.form)
            )
        )
        handler: Handler | float = self.script.pop(0) if self.script else self.default
        if isinstance(handler, (int, float)):  # a scripted stall: sleep past the client's timeout
            time.sleep(handler)
            handler = self.default
        return handler(request)(environ, start_response)


@contextmanager
def serve(server: FakeServer, ssl_context: ssl.SSLContext | None = None) -> Iterator[FakeServer]:
    """`ssl_context` (e.g. from trustme) serves https, for clients that insist on it like browsers' push URLs."""
    httpd = make_server("127.0.0.1", 0, server, threaded=True, ssl_context=ssl_context)
    server.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        thread.join(timeout=5)


def answer(
    status: int, body: str | bytes = b"", headers: dict[str, str] | None = None, mimetype: str | None = None
) -> Handler:
    return lambda request: Response(body, status=status, headers=headers or {}, mimetype=mimetype)
