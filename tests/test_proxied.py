"""`app.web.proxied:create_app(hops=N)`: behind N proxies the client address and scheme come from X-Forwarded-*."""

from __future__ import annotations

from flask import request

from app.web.proxied import create_app


def _echo(app):  # type: ignore[no-untyped-def]
    app.add_url_rule("/_echo", "echo", lambda: f"{request.remote_addr} {request.scheme} {request.host}")
    return app.test_client()


def test_one_proxy_hop_gives_the_client_address_and_scheme(runtime) -> None:  # type: ignore[no-untyped-def]
    client = _echo(create_app(hops=1, runtime=runtime))
    headers = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example.com"}
    answer = client.get("/_echo", headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert answer.text == "198.51.100.7 https app.example.com"


def test_a_client_cannot_choose_its_address_past_the_trusted_hops(runtime) -> None:  # type: ignore[no-untyped-def]
    client = _echo(create_app(hops=1, runtime=runtime))
    # The client forged the first entry; the proxy appended the address it saw. One hop: the proxy's entry wins.
    answer = client.get("/_echo", headers={"X-Forwarded-For": "203.0.113.1, 198.51.100.7"},
                        environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert answer.text.split()[0] == "198.51.100.7"


def test_without_the_wrapper_forwarded_headers_are_ignored(runtime) -> None:  # type: ignore[no-untyped-def]
    from app import create_app as plain

    answer = _echo(plain(runtime=runtime)).get("/_echo", headers={"X-Forwarded-For": "198.51.100.7"},
                                               environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert answer.text.split()[0] == "10.0.0.2"
