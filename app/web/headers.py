"""Security headers on every response: no MIME sniffing, no referrer, and for HTML a content security
policy whose `frame-ancestors` names a shop only when a verified session token says which one."""

from __future__ import annotations

from flask import Flask, Response, g

#: The pages are server-rendered with inline styles; the only scripts are App Bridge's (Shopify's CDN).
BASE_CSP = (
    "default-src 'self'; script-src 'self' https://cdn.shopify.com; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: https:; connect-src 'self' https://*.shopify.com; object-src 'none'; "
    "base-uri 'none'; form-action 'self'"
)
SHOPIFY_ADMIN = "https://admin.shopify.com"


def frame_ancestors() -> str:
    """Who may frame this page: the verified shop's admin (app/web/auth.py sets `g.frame_shop` only from a
    checked session token), Shopify's admin for the token bounce page, else no one."""
    shop = g.get("frame_shop")
    if shop:
        return f"https://{shop} {SHOPIFY_ADMIN}"
    if g.get("frame_admin"):
        return SHOPIFY_ADMIN
    return "'none'"


def _secure(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.mimetype == "text/html":
        # Replaces whatever a library set: its frame-ancestors may name a shop from an unchecked parameter.
        response.headers["Content-Security-Policy"] = f"{BASE_CSP}; frame-ancestors {frame_ancestors()}"
    return response


def install(app: Flask) -> None:
    app.after_request(_secure)
