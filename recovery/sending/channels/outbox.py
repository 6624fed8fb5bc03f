"""The local adapter used when no provider key is set: one file per message under the outbox directory.

Email is the `.eml` exactly as it would be sent; SMS and push are small JSON documents. Each file
appears whole or not at all, and a message id can never land twice.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from email import policy
from pathlib import Path
from typing import Any

from recovery.sending.channels.base import (
    Outbound,
    OutboundEmail,
    OutboundPush,
    OutboundSms,
    PermanentSendError,
    SendResult,
    TransientSendError,
)
from recovery.sending.channels.mime import build_email_message
from recovery.storage.private_files import private_dir

# File systems without hard links answer link() with one of these; anything else is a real failure.
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK}


class OutboxChannel:
    def __init__(self, outbox_dir: Path, message_domain: str = "cartresq.local") -> None:
        self.outbox_dir = Path(outbox_dir)
        self.message_domain = message_domain

    def send(self, message: Outbound) -> SendResult:
        name = f"{message.message_id}-step{message.step}"
        if isinstance(message, OutboundEmail):
            try:
                msg = build_email_message(message, message_domain=self.message_domain)
            except ValueError as exc:  # a provider would refuse it too: retrying cannot help
                raise PermanentSendError(str(exc)) from exc
            return self._write("email", f"{name}.eml", msg.as_bytes(policy=policy.SMTP))
        if isinstance(message, OutboundSms):
            doc: dict[str, Any] = {"to": message.to, "body": message.body}
        elif isinstance(message, OutboundPush):
            endpoint = message.subscription.get("endpoint")
            if not isinstance(endpoint, str) or not endpoint:
                raise PermanentSendError("push subscription has no endpoint")
            doc = {"to": endpoint, "title": message.title, "body": message.body, "url": message.url}
        else:
            raise TypeError(f"not an outbound message: {type(message).__name__}")
        doc |= {"cart_id": message.cart_id, "step": message.step, "message_id": message.message_id}
        channel = "sms" if isinstance(message, OutboundSms) else "push"
        data = json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
        return self._write(channel, f"{name}.json", data)

    def _write(self, channel: str, filename: str, data: bytes) -> SendResult:
        directory = self.outbox_dir / channel
        target = directory / filename
        if target.exists():  # cheap early answer; _publish is what guarantees it under races
            raise PermanentSendError("already in outbox")
        try:
            private_dir(directory)  # messages name shoppers: 0700, and mkstemp makes the files 0600
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{filename}.", suffix=".tmp")
        except OSError as exc:
            raise TransientSendError(f"outbox not writable: {exc.strerror}") from exc
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # after a crash the file is either complete or absent
            _publish(Path(tmp), target)
        except OSError as exc:
            raise TransientSendError(f"outbox not writable: {exc.strerror}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return SendResult(f"outbox:{filename}")


def _publish(tmp: Path, target: Path) -> None:
    """Give the finished temp file its real name: atomically, and never over an existing file.

    os.replace alone is atomic but would silently overwrite a concurrent send of the same message;
    link() is atomic and fails if the name exists.
    """
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise PermanentSendError("already in outbox") from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if target.exists():  # still atomic, exclusive only outside a race
            raise PermanentSendError("already in outbox") from None
        os.replace(tmp, target)
