"""Signed, expiring tokens for restore, open and unsubscribe links: bound to one message and one cart."""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode
from itsdangerous.serializer import Serializer

#: How long each kind of link works. Unsubscribe must keep working ≥ 30 days after sending (CAN-SPAM).
MAX_AGE = {"restore": 30 * 86400, "open": 60 * 86400, "unsubscribe": 400 * 86400}


class LinkError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LinkTarget:
    message_id: int
    cart_id: int


class _Serializer(URLSafeTimedSerializer):
    def dump_payload(self, obj: object) -> bytes:
        # Two ids never get shorter compressed, so skip the zlib attempt (half of the signing time). The
        # token is the one itsdangerous makes whenever compression does not help, and `loads` reads both.
        return base64_encode(Serializer.dump_payload(self, obj))


class LinkSigner:
    def __init__(self, secret_key: str) -> None:
        # One salt per kind: a restore token can never be replayed as an unsubscribe token.
        self._serializers = {kind: _Serializer(secret_key, salt=f"cartresq.{kind}") for kind in MAX_AGE}

    def sign(self, kind: str, message_id: int, cart_id: int) -> str:
        return self._serializers[kind].dumps([message_id, cart_id])

    def verify(self, kind: str, token: str) -> LinkTarget:
        try:
            message_id, cart_id = self._serializers[kind].loads(token, max_age=MAX_AGE[kind])
        except SignatureExpired:
            raise LinkError("expired") from None
        except (BadSignature, ValueError, TypeError):
            raise LinkError("invalid") from None
        if not isinstance(message_id, int) or not isinstance(cart_id, int):
            raise LinkError("invalid")
        return LinkTarget(message_id, cart_id)
