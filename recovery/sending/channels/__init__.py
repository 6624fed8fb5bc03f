"""Channels: one small interface (`Channel.send`) with a local outbox and a fake behind it."""

from recovery.sending.channels.base import (
    Channel,
    Outbound,
    OutboundEmail,
    OutboundPush,
    OutboundSms,
    OutcomeUnknown,
    PermanentSendError,
    SendResult,
    TransientSendError,
)
from recovery.sending.channels.fake import FakeChannel
from recovery.sending.channels.mime import build_email_message
from recovery.sending.channels.outbox import OutboxChannel

__all__ = [
    "Channel",
    "FakeChannel",
    "Outbound",
    "OutboundEmail",
    "OutboundPush",
    "OutboundSms",
    "OutcomeUnknown",
    "OutboxChannel",
    "PermanentSendError",
    "SendResult",
    "TransientSendError",
    "build_email_message",
]
