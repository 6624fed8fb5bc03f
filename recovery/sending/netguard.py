"""Outbound calls go only where we meant: public addresses, known push services, no redirects.

Two kinds of destination come from outside: browser push endpoints (posted by any storefront visitor)
and WooCommerce store URLs (typed by whoever starts an activation). For those:

- a push endpoint must be https on a known push service host (`push_endpoint_allowed`);
- every address the name resolves to must be public (`check_public`): no loopback, private, link-local
  (cloud metadata at 169.254.169.254), shared, multicast or reserved ranges, IPv4-mapped forms included;
- the connection itself is checked again once made (`GuardedAdapter`): the peer address of the socket,
  so a name that resolves differently a moment later (DNS rebinding) is still refused before a byte is sent;
- redirects are not followed, and each call has a short total deadline (`DeadlineSession`): a timer
  shuts the call's sockets down when it is up, whatever phase the call is in.

`allow_private=True` (CARTRESQ_ALLOW_PRIVATE_HOSTS=1) lifts the address rules, for local development and
tests whose fakes listen on 127.0.0.1; the push host list and the no-redirect rule stay.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

#: Web push services of the browsers that ship one (exact hosts, or any subdomain of the suffixes).
PUSH_HOSTS = frozenset({"fcm.googleapis.com", "updates.push.services.mozilla.com"})
PUSH_SUFFIXES = (".push.apple.com", ".notify.windows.com")
#: Seconds any one guarded call may take in all (connect, TLS, sending, the whole answer).
TOTAL_DEADLINE = 15.0


class PrivateAddress(ValueError):
    """The destination is (or resolves to) an address we never call."""


def push_endpoint_allowed(url: str) -> bool:
    """https, on a known push service's host, default port, no credentials in the URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or parts.username or parts.password or port not in (None, 443):
        return False
    return host in PUSH_HOSTS or any(host.endswith(s) and len(host) > len(s) for s in PUSH_SUFFIXES)


def is_public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            ip = embedded
    return bool(ip.is_global) and not ip.is_multicast and not ip.is_reserved


def check_public(host: str, port: int | None = None) -> None:
    """Raise PrivateAddress unless every address `host` resolves to is public (or it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise PrivateAddress(f"{host} does not resolve") from None
    bad = [info[4][0] for info in infos if not is_public(str(info[4][0]))]
    if bad or not infos:
        raise PrivateAddress(f"{host} resolves to a non-public address")


_watched = threading.local()  # the sockets of the request this thread is making (DeadlineSession)


def _opened(sock: socket.socket, check: bool) -> socket.socket:
    try:
        peer = sock.getpeername()[0]
    except OSError:
        sock.close()
        raise
    if check and not is_public(str(peer)):
        sock.close()
        raise PrivateAddress("connection to a non-public address refused")
    sockets = getattr(_watched, "sockets", None)
    if sockets is not None:
        sockets.append(sock)  # the request's deadline can cut it
    return sock


class _HTTPConnection(HTTPConnection):
    check = True

    def _new_conn(self) -> socket.socket:
        return _opened(super()._new_conn(), self.check)


class _HTTPSConnection(HTTPSConnection):
    check = True

    def _new_conn(self) -> socket.socket:
        return _opened(super()._new_conn(), self.check)


class _AnyHTTPConnection(_HTTPConnection):
    check = False


class _AnyHTTPSConnection(_HTTPSConnection):
    check = False


def _pool(base: type, connection: type) -> type:
    return type(f"Guarded{base.__name__}", (base,), {"ConnectionCls": connection})


_POOLS = {
    True: {"http": _pool(HTTPConnectionPool, _HTTPConnection), "https": _pool(HTTPSConnectionPool, _HTTPSConnection)},
    False: {"http": _pool(HTTPConnectionPool, _AnyHTTPConnection), "https": _pool(HTTPSConnectionPool, _AnyHTTPSConnection)},
}


class GuardedAdapter(HTTPAdapter):
    """Connections only to public peer addresses, checked on the connected socket (`check=False`: any
    address, for local development and tests); every socket can be cut by the request's deadline."""

    def __init__(self, *args: Any, check: bool = True, **kwargs: Any) -> None:
        self.check = check
        super().__init__(*args, **kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS[getattr(self, "check", True)]


def _cut(sockets: list[socket.socket]) -> None:
    for sock in list(sockets):
        try:
            sock.shutdown(socket.SHUT_RDWR)  # the waiting read returns at once; the call fails
        except OSError:
            pass


class AnswerTooLarge(requests.RequestException):
    """The answer is longer than the caller's `max_bytes`."""


def _read_at_most(response: requests.Response, max_bytes: int) -> None:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        response.close()
        raise AnswerTooLarge(f"answer of {declared} bytes, over {max_bytes}")
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            response.close()
            raise AnswerTooLarge(f"answer over {max_bytes} bytes")
        chunks.append(chunk)
    response._content = b"".join(chunks)  # what .json() and .content read


class DeadlineSession(requests.Session):
    """Never follows redirects; every request (connect, TLS, sending, headers and the whole answer, retries
    included) ends within `deadline` seconds: a timer shuts its sockets down once the time is up, so a
    host that trickles its answer a byte at a time cannot hold a worker longer."""

    def __init__(
        self, *, allow_private: bool = False, deadline: float = TOTAL_DEADLINE, retries: Any = 0,
        max_bytes: int | None = None,
    ) -> None:
        """`max_bytes`: an answer longer than this (declared, or as read, after decompression) is refused
        with AnswerTooLarge instead of being read into memory."""
        super().__init__()
        self.deadline, self.max_bytes = deadline, max_bytes
        adapter = GuardedAdapter(max_retries=retries, check=not allow_private)
        self.headers["Connection"] = "close"  # a new (checked, watched) connection for every request
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs["allow_redirects"] = False
        kwargs["stream"] = self.max_bytes is not None
        sockets: list[socket.socket] = []
        _watched.sockets = sockets
        timer = threading.Timer(self.deadline, _cut, args=(sockets,))
        timer.daemon = True
        started = time.monotonic()
        timer.start()
        try:
            response = super().request(method, url, *args, **kwargs)  # reads the whole answer
            if self.max_bytes is not None:
                _read_at_most(response, self.max_bytes)
        except requests.RequestException as exc:
            if time.monotonic() - started >= self.deadline:
                raise requests.Timeout(f"no complete answer within {self.deadline:.0f} s") from exc
            raise
        finally:
            timer.cancel()
            _watched.sockets = None
        return response
