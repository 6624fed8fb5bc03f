"""Credentials at rest: Fernet (authenticated encryption) with key rotation through MultiFernet."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class Vault:
    """Encrypts with the first key; decrypts with any, so old ciphertexts survive a key rotation."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("CARTRESQ_ENCRYPTION_KEY is not set")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def seal(self, data: dict[str, Any]) -> bytes:
        return self._fernet.encrypt(json.dumps(data, separators=(",", ":")).encode())

    def open(self, token: bytes) -> dict[str, Any]:
        try:
            return dict(json.loads(self._fernet.decrypt(token)))
        except InvalidToken:
            raise ValueError("credentials cannot be decrypted with the configured keys") from None

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt under the newest key."""
        return self._fernet.rotate(token)
