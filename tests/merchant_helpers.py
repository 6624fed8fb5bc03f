"""Helpers for the merchant app tests: accounts linked to stores, signing in through the real form."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from app.web.merchant import accounts
from app.runtime import Runtime
from recovery.storage import tables as t

PASSWORD = "correct horse battery"


def make_account(rt: Runtime, email: str, *store_ids: int, password: str = PASSWORD) -> int:
    with rt.sessions.begin() as db:
        account = accounts.create(db, email, password)
        for store_id in store_ids:
            accounts.link_store(db, account.id, store_id)
        return account.id


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def sign_in(client: Any, email: str, password: str = PASSWORD) -> Any:
    token = csrf_of(client.get("/app/sign-in").get_data(as_text=True))
    return client.post("/app/sign-in", data={"email": email, "password": password, "csrf_token": token})


def token_for(client: Any, path: str) -> str:
    return csrf_of(client.get(path).get_data(as_text=True))


def outbox_emails(rt: Runtime) -> list[Any]:
    folder = Path(rt.settings.outbox_dir) / "email"
    files = sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime) if folder.exists() else []
    return [message_from_bytes(p.read_bytes(), policy=policy.default) for p in files]


def body_of(message: Any) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def store_settings(rt: Runtime, store_id: int) -> dict[str, Any]:
    with rt.sessions() as db:
        return dict(db.get(t.Store, store_id).settings or {})
