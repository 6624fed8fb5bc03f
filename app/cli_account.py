"""`cartresq account create`: a merchant account for the standalone sign-in (/app/sign-in), linked to stores.

For self-hosted stores that no install or activation flow gives an account. The rules are the sign-in's own
(app/web/merchant/accounts.py: the email's form, 10 to 256 characters of password, argon2id); the password is
read from a hidden prompt (or stdin), never from the command line, and never printed.
"""

from __future__ import annotations

import click

from app.cli_store import _sessions


@click.group()
def account() -> None:
    """Merchant accounts for the standalone sign-in."""


@account.command("create")
@click.argument("email")
@click.option("--store", "stores", multiple=True, required=True, help="a registered store's domain (repeatable)")
@click.password_option(help="read from a hidden prompt (asked twice) when not given")
def account_create(email: str, stores: tuple[str, ...], password: str) -> None:
    """Create a merchant account and link it to stores; it signs in at /app/sign-in."""
    from app.web.merchant import accounts
    from recovery.config.stores import get_store

    with _sessions() as (_settings, session):
        found = [get_store(session, domain) for domain in stores]  # an unknown store: a clean error, nothing written
        try:
            if accounts.find(session, accounts.normal_email(email)) is not None:
                raise click.ClickException("an account with this email exists already")
            created = accounts.create(session, email, password)
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from None
        for store in found:
            accounts.link_store(session, created.id, store.id)
        click.echo(f"account {created.id} created for {len(found)} store(s): {', '.join(s.domain for s in found)}; "
                   "sign in at /app/sign-in")  # fmt: skip
