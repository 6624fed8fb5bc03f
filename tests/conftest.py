"""Shared fixtures: the same tests run on SQLite and PostgreSQL, and on the in-process and Redis brokers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import dramatiq
from dramatiq.brokers.redis import RedisBroker
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.storage import tables as t
from recovery.storage.schema import upgrade
from recovery.config.settings import Settings
from tests.support import services
from tests.support.shopify import SECRET, SHOP

POSTAL_ADDRESS = "1 Example Street, Springfield, EX 00000"

ENCRYPTION_KEY = Fernet.generate_key().decode()

# CARTRESQ_TEST_CLOCK=2026-03-08T06:30:00+00:00 runs this process's wall clock from that instant on (it keeps
# ticking; monotonic clocks are untouched). tests/test_clock_matrix.py runs the time-sensitive files this way
# at hours spread over the day, so a test that reads the wall clock where it should take an injected one fails
# in the suite at any hour, not only when CI happens to run in the wrong one.
CLOCK = os.environ.get("CARTRESQ_TEST_CLOCK")


def pytest_configure(config: pytest.Config) -> None:
    if CLOCK:
        import time_machine

        time_machine.travel(datetime.fromisoformat(CLOCK), tick=True).start()


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups into the node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make test` runs in several xdist workers with --dist loadgroup: what shares an expensive session fixture
    stays on one worker (tests/ml: the trained model; each order storage of the real WooCommerce store: its
    WordPress, so the two storages run side by side)."""
    for item in items:
        path = str(item.path).replace(os.sep, "/")
        if "/tests/ml/" in path:
            item.add_marker(pytest.mark.xdist_group("ml"))
        elif "/tests/realwoo/" in path:
            storage = getattr(getattr(item, "callspec", None), "params", {}).get("realwoo", "store")
            item.add_marker(pytest.mark.xdist_group(f"realwoo-{storage}"))


@pytest.fixture(autouse=True)
def _logger_levels_restored() -> Iterator[None]:
    """A test that runs a whole command in-process (the demo quiets `recovery`, `app`...) must not leave
    later tests' log capture deaf: every logger's level is put back after each test."""
    import logging

    def loggers() -> list[logging.Logger]:
        found = logging.root.manager.loggerDict.values()
        return [logging.getLogger(), *(logger for logger in found if isinstance(logger, logging.Logger))]

    levels = {logger.name: logger.level for logger in loggers()}
    yield
    for logger in loggers():  # loggers made during the test go back to NOTSET
        logger.setLevel(levels.get(logger.name, logging.NOTSET))


def pytest_report_header(config: pytest.Config) -> str | None:
    return f"wall clock moved to {CLOCK} (CARTRESQ_TEST_CLOCK)" if CLOCK else None


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once; each test gets a copy of the file."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    url = services.create_pg_database()
    upgrade(url)
    yield url
    services.drop_pg_database(url)


def _truncate(url: str) -> None:
    from recovery.storage.db import make_engine

    engine = make_engine(url)
    names = ", ".join(table.name for table in reversed(t.Base.metadata.sorted_tables))
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "cartresq.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("pg_database")
    yield url
    _truncate(url)


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "cartresq.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    yield pg_database
    _truncate(pg_database)


def make_settings(database_url: str, tmp_path: Path, redis_url: str | None = None, **extra: object) -> Settings:
    values: dict[str, object] = dict(
        database_url=database_url,
        redis_url=redis_url,
        secret_key="test-secret-key",
        encryption_keys=(ENCRYPTION_KEY,),
        shopify_api_key="test-api-key",
        shopify_api_secret=SECRET,
        outbox_dir=tmp_path / "outbox",
        var_dir=tmp_path / "var",
        model_dir=tmp_path / "model",
        explore_epsilon=0.0,  # send times stay exactly predictable; exploration tests set their own
    )
    values.update(extra)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(params=["in-process", "redis"])
def broker_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """Web-side runtime on the in-process broker; see `worker_runtime` for the Redis path."""
    rt = build_runtime(make_settings(database_url, tmp_path))
    yield rt
    rt.close()


@pytest.fixture
def redis_url() -> str:
    url = services.check_redis()
    import redis

    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def any_broker_runtime(database_url: str, tmp_path: Path, broker_kind: str, request: pytest.FixtureRequest) -> Iterator[Runtime]:
    """The same runtime on the in-process broker and on Redis (a real Dramatiq worker consumes either)."""
    redis_url = request.getfixturevalue("redis_url") if broker_kind == "redis" else None
    rt = build_runtime(make_settings(database_url, tmp_path, redis_url=redis_url))
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime=runtime).test_client()


ADMIN_TOKEN = "test-operator-token-0123456789"


@pytest.fixture
def self_hosted_client(runtime: Runtime):  # type: ignore[no-untyped-def]
    """The same app without Shopify app credentials (the demo's case): the dashboard needs the operator
    token, which this client sends (`client.environ_base.pop("HTTP_AUTHORIZATION")` to go without)."""
    import dataclasses

    settings = dataclasses.replace(runtime.settings, admin_token=ADMIN_TOKEN)
    client = create_app(runtime=dataclasses.replace(runtime, shopify=None, settings=settings)).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {ADMIN_TOKEN}"
    return client


@pytest.fixture
def store_id(runtime: Runtime) -> int:
    return add_store(runtime)


#: The test store's holdout salt. Drawn at random (the default), a store put a fixture shopper in its 10 %
#: holdout one run in ten and a test that expected a reminder failed (stop 28's CI). With this salt every
#: fixture shopper (tests/fixtures, tests/support) is treated at any holdout share below 57 %.
TEST_SALT = "tests-fixed-salt-066800000000000"


def add_store(rt: Runtime, domain: str = SHOP) -> int:
    with rt.sessions.begin() as session:
        store = t.Store(platform="shopify", domain=domain, settings={"postal_address": POSTAL_ADDRESS}, timezone="UTC",
                        currency="USD", plan="free", experiment_salt=TEST_SALT)  # fmt: skip
        session.add(store)
        session.flush()
        return store.id


def drain(rt: Runtime, queue: str = "intake") -> None:
    """Run a real Dramatiq worker on this runtime's broker until the queue is empty."""
    worker = dramatiq.Worker(rt.broker, worker_threads=2, worker_timeout=50)
    worker.start()
    try:
        if isinstance(rt.broker, RedisBroker):
            rt.broker.join(queue, interval=20, timeout=20_000)
        else:
            rt.broker.join(queue, timeout=20_000, fail_fast=True)
        worker.join()
    finally:
        worker.stop()
