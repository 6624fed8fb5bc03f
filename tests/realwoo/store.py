"""A real WordPress 6.6.7 + WooCommerce 9.2.5 store with CartResQ's plugin, and `cartresq serve`, both behind
nginx TLS, brought up by the project's copy of the setup steps (.ci/realwoo, sources from ../shared/vendor).

Driven as a merchant, WooCommerce and shoppers would: HTTPS only; webhooks are sent by Action Scheduler,
run here on demand (`run_queue`, what WP-Cron does on page loads).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import random
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tests.support.push_service import VAPID_PRIVATE

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / ".ci" / "realwoo"
VENDOR = Path(os.environ.get("REALWOO_VENDOR") or REPO.parent / "shared" / "vendor")
PHP_MODULES = ("mysqli", "curl", "mbstring", "xml", "intl", "gd", "zip")
T = TypeVar("T")


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run the store (.ci/run installs it); empty when all is there."""
    missing = [c for c in ("php", "nginx", "mysql", "openssl", "psql") if not _which(c)]
    if _which("php"):
        modules = subprocess.run(["php", "-m"], capture_output=True, text=True, check=False).stdout.lower()
        missing += [f"php-{m}" for m in PHP_MODULES if m not in modules.split()]
    if not (VENDOR / "SHA256SUMS").exists():
        missing.append(f"{VENDOR} (../shared/vendor beside the checkout)")
    if _which("mysql") and subprocess.run(["mysql", "-uroot", "-e", "SELECT 1"], capture_output=True,
                                          check=False).returncode != 0:
        missing.append("MariaDB on 127.0.0.1:3306 (root, no password)")
    return missing


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _which(command: str) -> bool:
    return any(os.access(Path(d) / command, os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep))


def free_port_base() -> int:
    """Four consecutive free loopback ports (store http, app http, store TLS, app TLS), below the ephemeral
    range so that no outgoing connection takes one between this check and the servers' bind."""
    rng = random.Random()
    for _ in range(100):
        base = rng.randrange(20000, 30000, 4)
        try:
            for port in range(base, base + 4):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no four free consecutive ports")


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Poll another process's state (the store, the app) until `check` returns a value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@dataclass
class RealWoo:
    storage: str  # "hpos" or "posts"
    var: Path
    base: int
    name: str  # MariaDB and PostgreSQL database name
    env: dict[str, str] = field(default_factory=dict)
    engine: Engine | None = None
    _classic: str = ""

    @property
    def store_url(self) -> str:
        return f"https://127.0.0.1:{self.base + 2}"

    @property
    def app_url(self) -> str:
        return f"https://127.0.0.1:{self.base + 3}"

    @property
    def ca(self) -> str:
        return str(self.var / "tls" / "ca.pem")

    @property
    def site(self) -> Path:
        return self.var / "site"

    @property
    def pg_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.name}"

    @classmethod
    def create(cls, storage: str, var: Path) -> RealWoo:
        rw = cls(storage, var, free_port_base(), f"rw_{os.getpid()}_{storage}")
        env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "REDIS_URL")}
        from cryptography.fernet import Fernet

        env.update(
            REALWOO_PORT_BASE=str(rw.base), REALWOO_VAR=str(var), REALWOO_DB=rw.name, REALWOO_PG_DB=rw.name,
            REALWOO_HPOS="yes" if storage == "hpos" else "no", CARTRESQ_DIR=str(REPO),
            CARTRESQ_VENV=str(Path(sys.executable).parent.parent), REALWOO_VENDOR=str(VENDOR),
            CARTRESQ_ENCRYPTION_KEY=Fernet.generate_key().decode(), CARTRESQ_VAR_DIR=str(var / "app"),
            REALWOO_STORE_HOST=f"127.0.0.1:{rw.base + 2}",
            CARTRESQ_ALLOW_PRIVATE_HOSTS="1",  # the store is on loopback, which outbound calls refuse by default
            VAPID_PRIVATE_KEY=VAPID_PRIVATE, VAPID_SUBJECT="mailto:ops@example.com",  # web push on: the popup offers it
            SECRET_KEY=secrets.token_hex(32),  # shared with the tests' own sender, so its /r/ links open in the app
        )
        rw.env = env
        return rw

    def script(self, name: str) -> str:
        result = subprocess.run(["bash", str(SCRIPTS / name)], env=self.env, capture_output=True, text=True,
                                timeout=240, check=False)
        log = self.var / f"{name}.log"
        log.write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise RuntimeError(f"{name} failed ({result.returncode}); last lines:\n" + log.read_text()[-3000:])
        return result.stdout

    def up(self) -> None:
        self.var.mkdir(parents=True, exist_ok=True)
        self.script("setup.sh")
        out = self.script("start.sh")
        if "store: 200" not in out:
            raise RuntimeError("start.sh: store or app not answering\n" + out + self._log_tail("cartresq.log"))
        self._wait_for_app()
        self.engine = create_engine(self.pg_url)

    def _wait_for_app(self) -> None:
        """start.sh waits 30 s at most; on a loaded machine the app may take longer to answer /healthz."""
        session = self.http()

        def healthy() -> bool:
            try:
                return session.get(f"{self.app_url}/healthz", timeout=10).status_code == 200
            except requests.RequestException:
                return False

        try:
            wait_for("the app to answer /healthz", healthy, timeout=120)
        except AssertionError:
            raise RuntimeError("the app does not answer\n" + self._log_tail("cartresq.log")) from None
        finally:
            session.close()

    def down(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
        subprocess.run(["bash", str(SCRIPTS / "stop.sh")], env=self.env, capture_output=True, check=False)
        subprocess.run(["mysql", "-uroot", "-e", f"DROP DATABASE IF EXISTS {self.name}"], capture_output=True,
                       check=False)
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {self.name}"],
                       capture_output=True, check=False)

    def spki(self) -> str:
        """base64 SHA-256 of the server certificate's public key (Chromium's --ignore-certificate-errors-spki-list)."""
        pem = subprocess.run(["openssl", "x509", "-in", str(self.var / "tls" / "server.pem"), "-pubkey", "-noout"],
                             capture_output=True, check=True).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pem, capture_output=True,
                             check=True).stdout
        return base64.b64encode(hashlib.sha256(der).digest()).decode()

    def stop_app(self) -> None:
        """Stop `cartresq serve` only (the pid start.sh recorded); nginx then answers 502 for it."""
        pid = int((self.var / "cartresq.pid").read_text())
        os.killpg(pid, 15)
        wait_for("cartresq to stop", lambda: not _alive(pid), timeout=30)

    def start_app(self) -> None:
        """start.sh again (it stops what it started first): the store keeps its data, the app its database."""
        self.script("start.sh")
        self._wait_for_app()

    def classic_checkout(self) -> str:
        """A classic (shortcode) checkout page beside the block one; made once."""
        if not self._classic:
            self._classic = str(self.wpq("make-classic-page")["url"])
        return self._classic

    def _log_tail(self, name: str) -> str:
        path = self.var / "logs" / name
        return path.read_text()[-3000:] if path.exists() else ""

    # --- WooCommerce's own state and actions (.ci/realwoo/wpq.php) ---

    def wpq(self, what: str, arg: str | None = None) -> Any:
        command = ["php", str(SCRIPTS / "wpq.php"), str(self.site), what] + ([arg] if arg else [])
        result = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        start = min(i for i in (result.stdout.find("["), result.stdout.find("{")) if i >= 0)
        return json.loads(result.stdout[start:])  # after any PHP notice

    def run_queue(self) -> int:
        """Send every pending webhook delivery now (Action Scheduler, as WP-Cron would); how many actions ran."""
        drained = self.wpq("drain")  # one PHP process: a loop of them cost seconds per call
        assert drained["pending"] == 0, drained
        return int(drained["processed"])

    def outgoing(self) -> list[dict[str, Any]]:
        """Every request WordPress sent to CartResQ, with its answer (the store's mu-plugin logs them)."""
        path = self.var / "logs" / "wp-outgoing.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    # --- CartResQ ---

    @property
    def domain(self) -> str:
        """The store's `stores.domain` (host and port of the store URL)."""
        return self.store_url.split("://", 1)[1]

    def store(self, command: str, *args: str) -> None:
        """`cartresq store set|unset DOMAIN ...`, as an operator would (the app reads settings per request)."""
        env = {**self.env, "DATABASE_URL": self.pg_url.replace("+psycopg", ""), "PYTHONPATH": str(REPO)}
        result = subprocess.run([sys.executable, "-m", "app.cli", "store", command, self.domain, *args], env=env,
                                cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]

    # --- CartResQ's database ---

    def rows(self, sql: str, **params: Any) -> list[Any]:
        assert self.engine is not None
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params))

    def rows_commit(self, sql: str, **params: Any) -> None:
        assert self.engine is not None
        with self.engine.begin() as conn:
            conn.execute(text(sql), params)

    # --- browsers without JavaScript: the merchant in wp-admin ---

    def http(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE from the environment would override verify=
        session.verify = self.ca
        return session

    def merchant(self) -> requests.Session:
        session = self.http()
        session.get(f"{self.store_url}/wp-login.php", timeout=30)  # sets the test cookie
        answer = session.post(f"{self.store_url}/wp-login.php", data={"log": "admin", "pwd": "admin-pass-123",
                              "testcookie": "1"}, allow_redirects=False, timeout=30)
        assert answer.status_code == 302, answer.status_code
        return session

    def connect(self) -> str:
        """The merchant enters the app URL, clicks Connect, then Approve on WooCommerce's page; the final page."""
        merchant = self.merchant()
        for _ in range(3):  # WooCommerce sends the first admin visit after activation to its own home page
            answer = merchant.get(f"{self.store_url}/wp-admin/admin.php?page=cartresq", timeout=30)
            page = answer.text
            if "page=cartresq" in answer.url:
                break
        nonce = re.search(r'id="_wpnonce" name="_wpnonce" value="([^"]+)"', page)
        assert nonce, f"no settings form on the CartResQ admin page: {answer.status_code} {answer.url} " + re.sub(
            r"\s+", " ", re.sub(r"<[^>]+>", " ", page))[:1500]
        saved = merchant.post(f"{self.store_url}/wp-admin/admin-post.php", allow_redirects=False, timeout=30, data={
            "action": "cartresq_save", "_wpnonce": nonce.group(1), "cartresq_app_url": self.app_url,
            "_wp_http_referer": "/wp-admin/admin.php?page=cartresq"})
        assert saved.status_code == 302 and "updated=1" in saved.headers["location"]
        page = merchant.get(f"{self.store_url}/wp-admin/admin.php?page=cartresq", timeout=30).text
        connect = re.search(r'<a class="button button-primary" href="([^"]+)"', page)
        assert connect, "no Connect button"
        authorize = merchant.get(html.unescape(connect.group(1)), timeout=60)  # app → /wc-auth/v1/authorize
        assert "/wc-auth/v1/authorize" in authorize.url, authorize.url
        approve = re.search(r'href="([^"]*access_granted[^"]*)"', authorize.text)
        assert approve, "no Approve button on WooCommerce's authorize page"
        return merchant.get(html.unescape(approve.group(1)), timeout=120).text  # keys → callback → return page
