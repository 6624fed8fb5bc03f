"""The standalone door: sign in, sign out, password reset by emailed link, claiming a newly activated store,
and the store switcher. Every form here carries a CSRF token (app/web/merchant/__init__.py)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, g, make_response, redirect, render_template, request, session, url_for

from app.web.merchant import accounts, bp, mail
from app.web.merchant.context import SESSION_COOKIE, merchant_required, signed_in_account
from recovery.storage import tables as t
from recovery.storage.tables import utcnow

log = logging.getLogger(__name__)


def _db():  # type: ignore[no-untyped-def]
    from app.web import runtime

    return runtime().sessions


def _safe_next(value: str | None) -> str:
    """Only a path inside the merchant app: never another site (no open redirect)."""
    if (value and value.startswith("/app") and not value.startswith("//") and "\\" not in value
            and value.isprintable() and value.isascii()):  # no CR/LF or other control characters for the header
        return value
    return url_for("merchant.home")


def _signed_in(account_id: int, target: str) -> Response:
    with _db().begin() as db:
        token = accounts.open_session(db, account_id, utcnow())
    session.clear()  # a fresh CSRF secret for the signed-in session (no fixation from before sign-in)
    response = make_response(redirect(target, 303))
    response.set_cookie(SESSION_COOKIE, token, max_age=int(accounts.SESSION_TTL.total_seconds()), secure=True,
                        httponly=True, samesite="Lax", path="/")
    return response


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    error, email = None, ""
    if request.method == "POST":
        email, password = request.form.get("email", "")[:320], request.form.get("password", "")[:1024]
        ip = (request.remote_addr or "unknown")[:64]
        with _db().begin() as db:
            result = accounts.sign_in(db, email, password, ip, utcnow())
            account_id = result.id if isinstance(result, t.MerchantAccount) else None
        if isinstance(result, accounts.Refused):
            page = render_template("merchant/sign_in.html", email=email, next=request.form.get("next"),
                                   error=f"Too many failed attempts. Try again in {max(1, result.retry_after // 60)} "
                                         "minutes, or reset your password.")
            return page, 429, {"Retry-After": str(result.retry_after)}
        if account_id is not None:
            return _signed_in(account_id, _safe_next(request.form.get("next")))
        error = "That email and password do not match an account."
        return render_template("merchant/sign_in.html", email=email, next=request.form.get("next"), error=error), 401
    if signed_in_account() is not None:
        return redirect(_safe_next(request.args.get("next")))
    return render_template("merchant/sign_in.html", email=email, next=request.args.get("next"), error=error)


@bp.post("/sign-out")
def sign_out() -> Response:
    with _db().begin() as db:
        accounts.close_session(db, request.cookies.get(SESSION_COOKIE))
    session.clear()
    response = make_response(redirect(url_for("merchant.sign_in"), 303))
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="Lax")
    return response


@bp.route("/forgot", methods=["GET", "POST"])
def forgot() -> Any:
    """The same answer whether or not the address has an account (no account discovery)."""
    if request.method == "POST":
        email = request.form.get("email", "")[:320].strip().lower()
        wait = mail.refused("reset-ip", request.remote_addr or "unknown") or mail.refused("reset-email", accounts.digest(email))
        if wait:  # the same answer for known and unknown addresses, just later
            return render_template("merchant/forgot.html", sent=False,
                                   error=f"Too many requests: try again in {wait // 60 + 1} min."), 429, {"Retry-After": str(wait)}
        with _db().begin() as db:
            account = accounts.find(db, email)
            token = accounts.new_link(db, "reset", utcnow(), account_id=account.id) if account else None
        if token:
            from app.web import runtime

            link = f"{runtime().settings.app_url}/app/reset/{token}"
            try:
                mail.send(email, "Reset your CartResQ password",
                          f"Someone (we hope you) asked to reset the password of your CartResQ account.\n\n"
                          f"Choose a new password here within the next hour:\n{link}\n\n"
                          "If it was not you, ignore this email: your password stays as it is.\n")
            except mail.MailError:
                log.warning("password reset email could not be sent")
        return render_template("merchant/forgot.html", sent=True)
    return render_template("merchant/forgot.html", sent=False)


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str) -> Any:
    with _db().begin() as db:
        row = accounts.peek_link(db, token, "reset", utcnow())
        if row is None:
            return render_template("merchant/message.html", title="This link has expired",
                                   body="Reset links work once, for an hour. Ask for a new one.",
                                   link=url_for("merchant.forgot"), link_text="Send a new link"), 404
        if request.method == "GET":
            return render_template("merchant/password.html", error=None, action=request.path, claim=None)
        account = db.get(t.MerchantAccount, row.account_id)
        try:
            accounts.set_password(account, request.form.get("password", ""))
        except accounts.AccountError as exc:
            return render_template("merchant/password.html", error=str(exc), action=request.path, claim=None), 400
        accounts.use_link(row, utcnow())
        accounts.close_all_sessions(db, account.id)  # a reset signs out every other device
        account_id = account.id
    return _signed_in(account_id, url_for("merchant.home"))


@bp.route("/claim/<token>", methods=["GET", "POST"])
def claim(token: str) -> Any:
    """A newly activated store (WooCommerce wc-auth) joins an account: the signed-in one, an existing one
    (its password), or a new one made here."""
    current = signed_in_account()  # before the transaction: the pool may hold a single connection (SQLite)
    with _db().begin() as db:
        row = accounts.peek_link(db, token, "claim", utcnow())
        store = db.get(t.Store, row.store_id) if row is not None and row.store_id else None
        if row is None or store is None:
            return render_template("merchant/message.html", title="This link has expired",
                                   body="Connect the store again from the CartResQ page in your WordPress admin.",
                                   link=None, link_text=""), 404
        domain = store.domain
        if request.method == "GET":
            return render_template("merchant/claim.html", domain=domain, account=current, error=None, email="")
        if current is not None and request.form.get("join") == "1":
            accounts.link_store(db, current.id, store.id)
            accounts.use_link(row, utcnow())
            session["store_id"] = store.id
            return redirect(url_for("merchant.setup"), 303)
        email, password = request.form.get("email", "")[:320], request.form.get("password", "")[:1024]
        existing = accounts.find(db, email)
        try:
            if existing is None:
                account = accounts.create(db, email, accounts.check_password(password))  # never passwordless
            else:
                result = accounts.sign_in(db, email, password, (request.remote_addr or "unknown")[:64], utcnow())
                if not isinstance(result, t.MerchantAccount):
                    raise accounts.AccountError("that password does not match the account with this email")
                account = result
        except accounts.AccountError as exc:
            return render_template("merchant/claim.html", domain=domain, account=current, error=str(exc),
                                   email=email), 400
        accounts.link_store(db, account.id, store.id)
        accounts.use_link(row, utcnow())
        account_id, store_id = account.id, store.id
    response = _signed_in(account_id, url_for("merchant.setup"))
    session["store_id"] = store_id
    return response


@bp.post("/switch")
@merchant_required
def switch() -> Response:
    wanted = request.form.get("store", "")
    chosen = [s for s in g.stores if s.domain == wanted]
    if chosen:
        session["store_id"] = chosen[0].id
    return redirect(url_for("merchant.home"), 303)


@bp.get("/no-store")
def no_store() -> Any:
    return render_template("merchant/message.html", title="No store yet",
                           body="This account has no store yet. Connect one from the CartResQ page in your "
                                "WordPress admin (or install the app from the Shopify App Store).",
                           link=None, link_text="")
