"""Configuration errors as one clear line and a non-zero exit, not a traceback.

`Group` wraps every `cartresq` command: a database, broker or key problem becomes `error: ...` naming
the variable to fix (exit 2). Anything else is a bug and keeps its traceback. `preflight` checks the
connections a long-running command needs before it starts serving.
"""

from __future__ import annotations

import sys
from typing import Any

import click

#: Exit status for configuration errors (click uses 1 for command errors and 2 for usage errors).
CONFIG_EXIT = 2


class ConfigError(click.ClickException):
    exit_code = CONFIG_EXIT

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _safe_url(url: str | None) -> str:
    """A URL without its password, fit for a terminal."""
    if not url:
        return "(unset)"
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: show only the scheme
        return url.split("://", 1)[0] + "://…"


def _first_line(exc: BaseException) -> str:
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip().splitlines()
    return text[0] if text else type(inner).__name__


def explain(exc: BaseException) -> str | None:
    """The one line for a configuration error, or None when `exc` is not one."""
    import os

    from sqlalchemy import exc as sa

    database = _safe_url(os.environ.get("DATABASE_URL")) if os.environ.get("DATABASE_URL") else "the SQLite file"
    if isinstance(exc, (sa.OperationalError, sa.InterfaceError)):
        return f"cannot use the database at {database} (DATABASE_URL): {_first_line(exc)}"
    if isinstance(exc, (sa.ArgumentError, sa.NoSuchModuleError)):
        return f"DATABASE_URL is not a database URL SQLAlchemy can use: {_first_line(exc)}"
    try:
        import psycopg

        if isinstance(exc, psycopg.OperationalError):
            return f"cannot use the database at {database} (DATABASE_URL): {_first_line(exc)}"
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    import redis

    if isinstance(exc, redis.exceptions.RedisError):
        return f"cannot use Redis at {_safe_url(os.environ.get('REDIS_URL'))} (REDIS_URL): {_first_line(exc)}"
    if isinstance(exc, ValueError) and "Fernet key" in str(exc):
        return f"CARTRESQ_ENCRYPTION_KEY: {exc} (make one with: python -c " \
               "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
    return None


class Group(click.Group):
    """The `cartresq` group: configuration errors from any command become one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:
            line = explain(exc)
            if line is None:
                raise
            raise ConfigError(line) from None


def preflight(settings: Any) -> None:
    """Connect once to what a long-running process needs, so a wrong URL fails now and clearly."""
    from sqlalchemy import text

    from recovery.storage.crypto import Vault
    from recovery.storage.db import make_engine

    Vault(settings.encryption_keys)
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        engine.dispose()
    if settings.redis_url:
        import redis

        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=3)
        try:
            client.ping()
        finally:
            client.close()


def reachable(url: str, variable: str) -> None:
    """One TCP connect to the URL's host and port (cheap: no client library imported)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "localhost", parts.port or 6379), timeout=3):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot reach {_safe_url(url)} ({variable}): {exc.strerror or exc}") from None


def settings_or_exit() -> Any:
    """Settings from the environment; a bad value is one line naming the variable."""
    from recovery.config.settings import Settings

    try:
        return Settings.from_env()
    except ValueError as exc:
        line = explain(exc) or f"configuration: {exc}"
        raise ConfigError(line) from None


def plain_request_logs() -> type:
    """werkzeug's request handler without ANSI colours unless stderr is a terminal, and without the secrets
    of a URL (app.logs: link tokens, query strings) either way."""
    from app.logs import RedactingHandler, loggable

    class Handler(RedactingHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            if sys.stderr.isatty():
                return super().log_request(code, size)
            try:
                line = f"{self.command} {loggable(self.path)} {self.request_version}"
            except AttributeError:
                line = self.requestline
            self.log("info", '"%s" %s %s', line.translate(self._control_char_table), code, size)

    return Handler
