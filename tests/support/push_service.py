"""A push service over https that accepts what a real one accepts, and a browser's subscription keys.

It checks the RFC 8292 VAPID Authorization (the JWT signed by our key, for this origin), RFC 8291 aes128gcm
encryption and TTL, decrypts the payload with the browser's private key, and answers 201 with a Location.
Endpoints whose path ends in /gone answer 410 like an unsubscribed browser's.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import http_ece
import jwt
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from werkzeug.wrappers import Request, Response

from tests.support.fake_http import FakeServer, serve


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


VAPID_KEY = ec.generate_private_key(ec.SECP256R1())
VAPID_PRIVATE = b64url(VAPID_KEY.private_numbers().private_value.to_bytes(32, "big"))
VAPID_PUBLIC = b64url(
    VAPID_KEY.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
)


class Browser:
    """One browser's push subscription key pair and auth secret."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)

    def keys(self) -> dict[str, str]:
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"p256dh": b64url(point), "auth": b64url(self.auth)}


class PushService:
    def __init__(self) -> None:
        self.browsers: dict[str, Browser] = {}  # endpoint path → browser
        self.delivered: list[tuple[str, dict[str, Any]]] = []

    def subscribe(self, base_url: str, name: str) -> dict[str, Any]:
        browser = Browser()
        self.browsers[f"/push/{name}"] = browser
        return {"endpoint": f"{base_url}/push/{name}", "expirationTime": None, "keys": browser.keys()}

    def __call__(self, request: Request) -> Response:
        if (
            request.headers.get("Content-Encoding") != "aes128gcm"
            or not request.headers.get("TTL", "").isdigit()
        ):
            return Response("bad request", status=400)
        scheme, _, params = request.headers.get("Authorization", "").partition(" ")
        fields = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
        if scheme != "vapid" or fields.get("k") != VAPID_PUBLIC:
            return Response("unauthorized", status=401)
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(fields["k"]))
        try:  # the JWT must be ours and name this push service's origin
            jwt.decode(
                fields.get("t", ""), public, algorithms=["ES256"], audience=request.host_url.rstrip("/")
            )
        except jwt.PyJWTError:
            return Response("unauthorized", status=401)
        if request.path.endswith("/gone"):
            return Response("push subscription has unsubscribed or expired.", status=410)
        browser = self.browsers.get(request.path)
        if browser is None:
            return Response("not found", status=404)
        clear = http_ece.decrypt(
            request.get_data(), private_key=browser.key, auth_secret=browser.auth, version="aes128gcm"
        )
        self.delivered.append((request.path, json.loads(clear)))
        return Response(status=201, headers={"Location": f"{request.host_url}m/{len(self.delivered)}"})


@contextmanager
def https_push_service(tmp_path: Path) -> Iterator[tuple[FakeServer, PushService, Path]]:
    """The service on https://127.0.0.1 with a fresh CA; yields the CA bundle path for REQUESTS_CA_BUNDLE."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    bundle = tmp_path / "push-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    handler = PushService()
    with serve(FakeServer(handler), ssl_context=context) as server:
        yield server, handler, bundle
