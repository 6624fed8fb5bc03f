"""Which adapter each channel gets from the settings; a missing or broken key falls back to the outbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.runtime import build_channels
from recovery.sending.channels import OutboxChannel
from recovery.sending.channels.sendgrid import SendGridChannel
from recovery.sending.channels.smtp import SmtpChannel
from recovery.sending.channels.twilio_sms import TwilioSmsChannel
from recovery.sending.channels.webpush import WebPushChannel
from recovery.config.settings import Settings
from tests.conftest import make_settings
from tests.test_channels_webpush import VAPID_PRIVATE

TWILIO = {"twilio_account_sid": "AC1", "twilio_auth_token": "tok"}


def kinds(tmp_path: Path, **extra: object) -> dict[str, type]:
    channels = build_channels(make_settings("sqlite:///unused.db", tmp_path, **extra))
    return {name: type(channel) for name, channel in channels.items()}


def test_no_keys_means_the_outbox_everywhere(tmp_path: Path) -> None:
    assert kinds(tmp_path) == {"email": OutboxChannel, "sms": OutboxChannel, "push": OutboxChannel}


def test_sendgrid_wins_over_smtp(tmp_path: Path) -> None:
    assert kinds(tmp_path, sendgrid_api_key="SG.x", smtp_url="smtp://h:25")["email"] is SendGridChannel
    assert kinds(tmp_path, smtp_url="smtp://u:p@h:587?starttls=1")["email"] is SmtpChannel


def test_twilio_needs_a_sender(tmp_path: Path) -> None:
    assert kinds(tmp_path, **TWILIO)["sms"] is OutboxChannel
    assert kinds(tmp_path, **TWILIO, twilio_from="+15005550006")["sms"] is TwilioSmsChannel
    assert kinds(tmp_path, **TWILIO, twilio_messaging_service_sid="MG1")["sms"] is TwilioSmsChannel


def test_vapid_keys_select_web_push(tmp_path: Path) -> None:
    assert kinds(tmp_path, vapid_private_key=VAPID_PRIVATE, vapid_subject="ops@example.com")["push"] is WebPushChannel
    assert kinds(tmp_path, vapid_private_key=VAPID_PRIVATE)["push"] is OutboxChannel  # VAPID needs a subject


def test_a_malformed_key_or_url_falls_back_without_crashing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    found = kinds(tmp_path, smtp_url="mail.example.com:25", vapid_private_key="not-a-key", vapid_subject="ops@example.com")
    assert found["email"] is OutboxChannel and found["push"] is OutboxChannel
    assert "misconfigured" in caplog.text and "not-a-key" not in caplog.text


def test_provider_settings_from_the_environment() -> None:
    env = {
        "SENDGRID_WEBHOOK_VERIFICATION_KEY": "MFkw",
        "SENDGRID_ASM_GROUP_ID": "77",
        "SENDGRID_API_BASE": "http://127.0.0.1:9999/",
        "TWILIO_MESSAGING_SERVICE_SID": "MG1",
        "TWILIO_API_BASE": "http://127.0.0.1:9998",
        "SECRET_KEY": "k",
        "CARTRESQ_ENCRYPTION_KEY": "k",
    }
    s = Settings.from_env(env)
    assert (s.sendgrid_verification_key, s.sendgrid_asm_group_id, s.sendgrid_base_url) == ("MFkw", 77, "http://127.0.0.1:9999")
    assert (s.twilio_messaging_service_sid, s.twilio_base_url) == ("MG1", "http://127.0.0.1:9998")
    assert Settings.from_env({"SECRET_KEY": "k", "CARTRESQ_ENCRYPTION_KEY": "k"}).sendgrid_base_url == "https://api.sendgrid.com"
