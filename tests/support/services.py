"""Real PostgreSQL and Redis for tests: skipped on a laptop without them, a hard failure under CI=true."""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest
import redis

CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("CARTRESQ_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CARTRESQ_TEST_REDIS", "redis://127.0.0.1:6379/15")


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


def check_redis() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    return REDIS_URL
