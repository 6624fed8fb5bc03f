"""Real PostgreSQL and Redis for tests: skipped on a laptop without them, a hard failure under CI=true."""

from __future__ import annotations

import atexit
import os
import threading
import uuid

import psycopg
import pytest
import redis

CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("CARTRESQ_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
# The Redis server the tests use; each test run claims a database of its own on it (see `claim_redis_db`).
REDIS_SERVER = os.environ.get("CARTRESQ_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/")
# Databases a run may claim: 0 is left to whoever else uses the server, 14 is `cartresq bench`'s default,
# 15 was the old fixed test database (a run of an older checkout may still flush it).
REDIS_TEST_DBS = range(1, 14)
LEASE_PREFIX = "cartresq-test:redis-db:"
LEASE_SECONDS = 4 * 3600  # longer than any run; a crashed run's claim expires on its own


def unavailable(what: str, exc: Exception) -> None:
    message = f"{what} is not reachable ({type(exc).__name__}: {exc})"
    if CI:
        pytest.fail(message + " — CI=true requires it", pytrace=False)
    pytest.skip(message)


def create_pg_database() -> str:
    """A fresh database for this test session; returns its SQLAlchemy URL."""
    name = f"cartresq_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        unavailable("PostgreSQL", exc)
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"postgresql+psycopg://{base.split('://', 1)[1]}/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_claim_lock = threading.Lock()
_claimed: str | None = None


def _server_base() -> str:
    """The server's URL without a database number (CARTRESQ_TEST_REDIS may carry one; the claim picks its own)."""
    scheme, rest = REDIS_SERVER.split("://", 1)
    host, _, path = rest.partition("/")
    return f"{scheme}://{host}" if path.isdigit() or not path else REDIS_SERVER


def claim_redis_db() -> str:
    """This run's own Redis database: leased with SET NX in db 0, so two runs on one machine never share
    (and never flush) one. Released when the run ends; a lease left by a killed run expires by itself."""
    global _claimed
    with _claim_lock:
        if _claimed:
            return _claimed
        base = _server_base()
        admin = redis.Redis.from_url(f"{base}/0", socket_connect_timeout=2)
        token = f"{os.getpid()}-{uuid.uuid4().hex}"
        for number in REDIS_TEST_DBS:
            if admin.set(f"{LEASE_PREFIX}{number}", token, nx=True, ex=LEASE_SECONDS):
                atexit.register(_release, admin, number, token)
                _claimed = f"{base}/{number}"
                return _claimed
        raise redis.RedisError(f"every test database {REDIS_TEST_DBS.start}-{REDIS_TEST_DBS.stop - 1} is claimed by another run")


def _release(admin: redis.Redis, number: int, token: str) -> None:
    key = f"{LEASE_PREFIX}{number}"
    try:
        if admin.get(key) == token.encode():
            redis.Redis.from_url(f"{_server_base()}/{number}").flushdb()
            admin.delete(key)
    except redis.RedisError:
        pass


def check_redis() -> str:
    """The URL of this run's own Redis database (claimed on first use)."""
    try:
        url = claim_redis_db()
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    return url
