"""The load generator's engine parts (see app/bench/loadgen.py): the pre-built requests, the recorder of
outcomes, and the default engine, non-blocking sockets on one epoll. Standard library only: the generator
process imports this file as a plain module beside its script."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import select
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

#: (i) -> the raw bytes of request number i of this phase.
RequestFactory = Callable[[int], bytes]

MAX_HEADER = 64 * 1024
#: A keep-alive connection idle this long (s) is not reused: gunicorn closes them after 2 s, and one closed
#: while a request is on its way fails that request. Clients keep their idle timeout below the server's.
IDLE_REUSE = 1.0


class BadResponse(Exception):
    pass


def parse_head(head: bytes) -> tuple[int, int, bool]:
    """(status, Content-Length or -1 if none, whether the server closes) of a response head (without its
    blank line); BadResponse for what this generator does not read (chunked bodies)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise BadResponse("bad status line")
    length, close = -1, parts[0] == b"HTTP/1.0"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
        elif name == b"transfer-encoding":
            raise BadResponse("chunked responses are not supported")
    status = int(parts[1])
    if status in (204, 304) or status < 200:  # never a body (RFC 9110 6.4.1), with or without Content-Length
        length = 0
    return status, length, close


class Requests:
    """Pre-built requests; built on demand past the pre-built count (counted, so a report can say so)."""

    def __init__(self, factory: RequestFactory, indices: Sequence[int]) -> None:
        self.factory = factory
        self.built = {i: factory(i) for i in indices}
        self.on_the_fly = 0

    def get(self, i: int) -> bytes:
        request = self.built.pop(i, None)
        if request is None:
            self.on_the_fly += 1
            request = self.factory(i)
        return request


class Recorder:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.acked: list[int] = []
        self.lags: list[float] = []

    def ok(self, i: int, status: int, latency: float) -> None:
        self.latencies.append(latency)
        self.statuses[status] += 1
        if 200 <= status < 300:
            self.acked.append(i)
        else:
            self.errors[f"http {status}"] += 1

    def finished(self) -> int:
        return len(self.latencies) + sum(v for k, v in self.errors.items() if not k.startswith("http "))

    def failed(self, exc: BaseException) -> None:
        if isinstance(exc, TimeoutError):
            self.errors["timeout"] += 1
        elif isinstance(
            exc, asyncio.IncompleteReadError | asyncio.LimitOverrunError | BadResponse | ValueError
        ):
            self.errors["bad response"] += 1
        elif isinstance(exc, OSError):
            self.errors[f"socket {type(exc).__name__}"] += 1
        else:
            self.errors[type(exc).__name__] += 1


class Slot:
    """One request in flight on the epoll engine."""

    __slots__ = ("sock", "i", "t0", "view", "buf", "need", "close", "status", "deadline")

    def __init__(self, sock: socket.socket, i: int, t0: float, request: bytes, deadline: float) -> None:
        self.sock = sock
        self.i = i
        self.t0 = t0  # latency origin: the send (closed loop) or the scheduled time (open loop)
        self.view = memoryview(request)
        self.buf = b""
        self.need = -1  # total response bytes once the head is parsed
        self.close = False
        self.status = 0
        self.deadline = deadline


class Epoll:
    """Non-blocking sockets on one epoll: no coroutine, future or stream per request."""

    def __init__(self, spec: dict[str, Any], requests: Requests, rec: Recorder) -> None:
        self.addr = (spec["host"], int(spec["port"]))
        self.timeout = float(spec["timeout"])
        self.requests = requests
        self.rec = rec
        self.ep = select.epoll()
        self.flying: dict[int, Slot] = {}
        self.idle: list[tuple[socket.socket, float]] = []  # keep-alive connections (and since when)

    # -- one request

    def start(self, i: int, t0: float, now: float) -> bool:
        """Open (or reuse) a connection, send request i (due by t0 + timeout); False if it failed at once."""
        sock = self.idle.pop()[0] if self.idle and now - self.idle[-1][1] < IDLE_REUSE else None
        if sock is None:  # the newest is too old, so are the rest
            for old, _ in self.idle:
                old.close()
            self.idle.clear()
        try:
            if sock is None:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                err = sock.connect_ex(self.addr)
                if err not in (0, errno.EINPROGRESS):
                    raise OSError(err, os.strerror(err))
            slot = Slot(sock, i, t0, self.requests.get(i), t0 + self.timeout)
            fd = sock.fileno()
            self.flying[fd] = slot
            self.ep.register(fd, select.EPOLLIN if self._send(slot) else select.EPOLLOUT)
        except OSError as exc:
            if sock is not None:
                self.flying.pop(sock.fileno(), None)
                sock.close()
            self.rec.failed(exc)
            return False
        return True

    def _send(self, slot: Slot) -> bool:
        """Send what the socket takes now; True once the whole request is out."""
        try:
            sent = slot.sock.send(slot.view)
        except BlockingIOError:
            return False  # still connecting, or a full buffer: wait for EPOLLOUT
        slot.view = slot.view[sent:]
        return not slot.view

    def event(self, fd: int, mask: int, now: float) -> Slot | None:
        """Advance the request on fd; returns its slot once it is finished (answered or failed)."""
        slot = self.flying.get(fd)
        if slot is None:
            return None
        try:
            if slot.view:
                if self._send(slot):
                    self.ep.modify(fd, select.EPOLLIN)
                return None
            data = slot.sock.recv(65536)
            if not data:
                if slot.need == -2:  # no Content-Length: the body ran to the end of the connection
                    slot.close = True
                    return self._done(fd, slot, now)
                raise BadResponse("connection closed before the response was complete")
            slot.buf += data
            if slot.need == -1:
                self._parse_head(slot)
            if slot.need >= 0 and len(slot.buf) >= slot.need:
                return self._done(fd, slot, now)
            return None
        except BlockingIOError:
            return None
        except (OSError, ValueError, BadResponse) as exc:
            self._drop(fd, slot)
            self.rec.failed(exc)
            return slot

    def _parse_head(self, slot: Slot) -> None:
        end = slot.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(slot.buf) > MAX_HEADER:
                raise BadResponse("response head too large")
            return
        slot.status, length, slot.close = parse_head(slot.buf[:end])
        slot.need = end + 4 + length if length >= 0 else -2

    def _done(self, fd: int, slot: Slot, now: float) -> Slot:
        self.rec.ok(slot.i, slot.status, now - slot.t0)
        del self.flying[fd]
        self.ep.unregister(fd)
        if slot.close:
            slot.sock.close()
        else:
            self.idle.append((slot.sock, now))
        return slot

    def _drop(self, fd: int, slot: Slot) -> None:
        self.flying.pop(fd, None)
        with contextlib.suppress(OSError, ValueError):
            self.ep.unregister(fd)
        slot.sock.close()

    def expire(self, now: float) -> int:
        """Cut requests past their timeout (counted as errors); returns how many."""
        late = [(fd, slot) for fd, slot in self.flying.items() if slot.deadline <= now]
        for fd, slot in late:
            self._drop(fd, slot)
            self.rec.errors["timeout"] += 1
        return len(late)

    def poll(self, wait: float) -> list[tuple[int, int]]:
        try:
            return self.ep.poll(max(0.0, wait), 512)
        except InterruptedError:
            return []

    def close(self) -> None:
        for fd, slot in list(self.flying.items()):
            self._drop(fd, slot)
        for sock, _ in self.idle:
            sock.close()
        self.ep.close()

    # -- the two modes

    def closed(self, spec: dict[str, Any], start: float, hard_stop: float) -> float:
        clock = time.monotonic
        deadline = start + float(spec["duration"])
        stride, offset = int(spec.get("stride", 1)), int(spec.get("offset", 0))
        counter = iter(range(offset, 1 << 62, stride))
        retry: deque[float] = deque()  # slots whose last attempt failed: start again after 1 ms
        while (now := clock()) < start:
            time.sleep(start - now)
        for _ in range(int(spec["connections"])):
            if not self.start(next(counter), now, now):
                retry.append(now + 0.001)
        next_expiry = now + 0.05
        while True:
            now = clock()
            if now >= hard_stop:
                self.rec.errors["generator overran its time budget"] += len(self.flying)
                break
            if now >= deadline:
                if not self.flying:
                    break
                retry.clear()
            while retry and retry[0] <= now:
                retry.popleft()
                if not self.start(next(counter), now, now):
                    retry.append(now + 0.001)
            wait = min(deadline - now if now < deadline else 0.05, retry[0] - now if retry else 0.05, 0.05)
            for fd, mask in self.poll(wait):
                now = clock()
                slot = self.event(fd, mask, now)
                # The slot goes on with its next request; after a failure, 1 ms later (no tight loop).
                if (
                    slot is not None
                    and now < deadline
                    and (slot.status == 0 or not self.start(next(counter), now, now))
                ):
                    retry.append(now + 0.001)
            if now >= next_expiry:
                for _ in range(self.expire(now)):
                    retry.append(now + 0.001)
                next_expiry = now + 0.05
        return clock()

    def open(self, spec: dict[str, Any], start: float, hard_stop: float) -> float:
        clock = time.monotonic
        rate = float(spec["rate"])
        stride, offset = int(spec.get("stride", 1)), int(spec.get("offset", 0))
        count = int(spec["count"])
        inflight = int(spec["inflight"])
        due = (offset + n * stride for n in range(count))  # the phase's request i is due at start + i/rate
        upcoming = next(due, None)
        waiting: deque[tuple[int, float]] = deque()
        next_expiry = start + 0.05
        drain_until = start + count * stride / rate + self.timeout + 2.0
        while True:
            now = clock()
            while upcoming is not None and start + upcoming / rate <= now:
                waiting.append((upcoming, start + upcoming / rate))
                upcoming = next(due, None)
            while waiting and len(self.flying) < inflight:
                i, scheduled = waiting.popleft()
                self.rec.lags.append(now - scheduled)
                if now - scheduled >= self.timeout:
                    self.rec.errors["timeout"] += 1  # its sender has given up already: not sent
                else:
                    self.start(i, scheduled, now)
            if upcoming is None and not waiting and not self.flying:
                break
            if now >= min(drain_until, hard_stop):
                self.rec.errors["unfinished"] += count - self.rec.finished()
                break
            wait = 0.05 if upcoming is None else min(0.05, start + upcoming / rate - now)
            for fd, mask in self.poll(wait):
                self.event(fd, mask, clock())
            if now >= next_expiry:
                self.expire(now)
                next_expiry = now + 0.05
        return clock()
