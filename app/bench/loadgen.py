"""A small, bounded HTTP/1.1 load generator for loopback benchmarks (stdlib only, no wrk needed).

Runs in its own process (`python app/bench/loadgen.py`, started by `run_phase`) so it never shares a GIL with
the code it measures. Protocol on stdin/stdout, one JSON line each: the parent writes the phase spec, the
child builds its requests before any clock starts and answers `{"ready": true}`, the parent writes
`{"go": <time.monotonic() start>}` (CLOCK_MONOTONIC is system-wide on Linux, so several children start
together), the child answers with its raw results. `run_phase()` does all of that and summarizes.

Two modes:

- closed loop: `connections` slots, each sends its next request as soon as the previous answer is read,
  until `duration` has passed; latency runs from the send (connect included) to the last body byte.
- open loop: exactly `rate × duration` requests, request i scheduled at start + i/rate whatever the server
  does; latency runs from the *scheduled* time, so a stalled server shows as queueing (no coordinated
  omission). In-flight requests are capped at `inflight`; the excess waits, and that wait is counted too.
  A request unanswered `timeout` seconds after its scheduled time is an error (as for a webhook sender).

Two engines: "epoll" (default on Linux: non-blocking sockets on one epoll, about half the CPU per request
of the other) and "asyncio" (streams from `asyncio.open_connection`; portable fallback).

HTTP: requests are pre-built raw bytes; responses are parsed by Content-Length. Keep-alive is used when the
server allows it and the connection is re-opened when it answers `Connection: close` (gunicorn sync workers
always do). Any non-2xx status, socket error, timeout or unreadable response is an error.

Every loop is bounded: no new request after `duration`, each request is cut at `timeout`, and the whole
process exits by itself at the latest `duration + timeout + 10 s` after its start.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib
import importlib.util
import json
import math
import os
import resource
import select
import socket
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

#: (i) -> the raw bytes of request number i of this phase.
RequestFactory = Callable[[int], bytes]

_MAX_HEADER = 64 * 1024


class _BadResponse(Exception):
    pass


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self) -> None:
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()  # no FIN handshake to wait for: the next request opens a new one
        self.reader = self.writer = None


async def _exchange(conn: _Conn, host: str, port: int, request: bytes) -> int:
    """Send one request on `conn` (opened if needed), read the whole response; returns the status."""
    if conn.writer is None:
        conn.reader, conn.writer = await asyncio.open_connection(host, port, limit=_MAX_HEADER)
    reader, writer = conn.reader, conn.writer
    assert reader is not None
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    end = head.find(b"\r\n")
    status_line = head[:end]
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise _BadResponse("bad status line")
    status = int(parts[1])
    length = -1
    close = parts[0] == b"HTTP/1.0"
    for line in head[end + 2 : -4].split(b"\r\n"):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
        elif name == b"transfer-encoding":
            raise _BadResponse("chunked responses are not supported")
    if length > 0:
        await reader.readexactly(length)
    elif length < 0:
        await reader.read()  # no length: the body runs to the end of the connection
        close = True
    if close:
        conn.close()
    return status


class _Recorder:
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
            exc, asyncio.IncompleteReadError | asyncio.LimitOverrunError | _BadResponse | ValueError
        ):
            self.errors["bad response"] += 1
        elif isinstance(exc, OSError):
            self.errors[f"socket {type(exc).__name__}"] += 1
        else:
            self.errors[type(exc).__name__] += 1


async def _closed(spec: dict[str, Any], requests: _Requests, start: float, rec: _Recorder) -> float:
    host, port, timeout = spec["host"], int(spec["port"]), float(spec["timeout"])
    deadline = start + float(spec["duration"])
    stride, offset = int(spec.get("stride", 1)), int(spec.get("offset", 0))
    counter = iter(range(offset, 1 << 62, stride))
    clock = time.monotonic

    async def worker() -> None:
        conn = _Conn()
        while clock() < deadline:
            i = next(counter)
            request = requests.get(i)
            sent = clock()
            try:
                async with asyncio.timeout(timeout):
                    status = await _exchange(conn, host, port, request)
            except Exception as exc:  # every failure is counted, none stops the run
                conn.close()
                rec.failed(exc)
                await asyncio.sleep(0.001)  # a refused connect must not spin
                continue
            rec.ok(i, status, clock() - sent)
        conn.close()

    await _sleep_until(start)
    await asyncio.gather(*(worker() for _ in range(int(spec["connections"]))))
    return clock()


async def _open(spec: dict[str, Any], requests: _Requests, start: float, rec: _Recorder) -> float:
    host, port, timeout = spec["host"], int(spec["port"]), float(spec["timeout"])
    rate = float(spec["rate"])
    stride, offset = int(spec.get("stride", 1)), int(spec.get("offset", 0))
    count = int(spec["count"])
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    clock = time.monotonic

    async def worker() -> None:
        conn = _Conn()
        while (item := await queue.get()) is not None:
            i, scheduled = item
            rec.lags.append(clock() - scheduled)
            if clock() - scheduled >= timeout:
                rec.errors["timeout"] += 1  # its sender has given up already: not sent
                continue
            try:
                async with asyncio.timeout_at(
                    asyncio.get_running_loop().time() + scheduled + timeout - clock()
                ):
                    status = await _exchange(conn, host, port, requests.get(i))
            except Exception as exc:  # every failure is counted, none stops the run
                conn.close()
                rec.failed(exc)
                continue
            rec.ok(i, status, clock() - scheduled)
        conn.close()

    workers = [asyncio.create_task(worker()) for _ in range(int(spec["inflight"]))]
    for n in range(count):
        i = offset + n * stride  # the phase's request i is due at start + i/rate, whichever process sends it
        scheduled = start + i / rate
        delay = scheduled - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((i, scheduled))
    for _ in workers:
        queue.put_nowait(None)
    # Bounded drain: whatever is still queued or in flight after `timeout` more seconds is an error.
    _done, pending = await asyncio.wait(workers, timeout=timeout + 2.0)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=1.0)
        rec.errors["unfinished"] += count - rec.finished()
    return clock()


async def _sleep_until(when: float) -> None:
    delay = when - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


class _Slot:
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


class _Epoll:
    """Non-blocking sockets on one epoll: no coroutine, future or stream per request."""

    def __init__(self, spec: dict[str, Any], requests: _Requests, rec: _Recorder) -> None:
        self.addr = (spec["host"], int(spec["port"]))
        self.timeout = float(spec["timeout"])
        self.requests = requests
        self.rec = rec
        self.ep = select.epoll()
        self.flying: dict[int, _Slot] = {}
        self.idle: list[socket.socket] = []  # keep-alive connections, when the server allows them

    # -- one request

    def start(self, i: int, t0: float, now: float) -> bool:
        """Open (or reuse) a connection, send request i (due by t0 + timeout); False if it failed at once."""
        sock = self.idle.pop() if self.idle else None
        try:
            if sock is None:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                err = sock.connect_ex(self.addr)
                if err not in (0, errno.EINPROGRESS):
                    raise OSError(err, os.strerror(err))
            slot = _Slot(sock, i, t0, self.requests.get(i), t0 + self.timeout)
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

    def _send(self, slot: _Slot) -> bool:
        """Send what the socket takes now; True once the whole request is out."""
        try:
            sent = slot.sock.send(slot.view)
        except BlockingIOError:
            return False  # still connecting, or a full buffer: wait for EPOLLOUT
        slot.view = slot.view[sent:]
        return not slot.view

    def event(self, fd: int, mask: int, now: float) -> _Slot | None:
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
                raise _BadResponse("connection closed before the response was complete")
            slot.buf += data
            if slot.need == -1:
                self._parse_head(slot)
            if slot.need >= 0 and len(slot.buf) >= slot.need:
                return self._done(fd, slot, now)
            return None
        except BlockingIOError:
            return None
        except (OSError, ValueError, _BadResponse) as exc:
            self._drop(fd, slot)
            self.rec.failed(exc)
            return slot

    def _parse_head(self, slot: _Slot) -> None:
        end = slot.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(slot.buf) > _MAX_HEADER:
                raise _BadResponse("response head too large")
            return
        lines = slot.buf[:end].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise _BadResponse("bad status line")
        slot.status = int(parts[1])
        slot.close = parts[0] == b"HTTP/1.0"
        length = -2
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                slot.close = value.strip().lower() == b"close"
            elif name == b"transfer-encoding":
                raise _BadResponse("chunked responses are not supported")
        slot.need = end + 4 + length if length >= 0 else -2

    def _done(self, fd: int, slot: _Slot, now: float) -> _Slot:
        self.rec.ok(slot.i, slot.status, now - slot.t0)
        del self.flying[fd]
        self.ep.unregister(fd)
        if slot.close:
            slot.sock.close()
        else:
            self.idle.append(slot.sock)
        return slot

    def _drop(self, fd: int, slot: _Slot) -> None:
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
        for sock in self.idle:
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


class _Requests:
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


def load_factory(spec: dict[str, Any]) -> RequestFactory:
    """`factory` is "package.module:function" or "/path/to/file.py:function" (loaded without its package,
    so a generator process imports only what that file imports)."""
    where, _, attr = spec["factory"].rpartition(":")
    if where.endswith(".py"):
        module_spec = importlib.util.spec_from_file_location("_loadgen_factory", where)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot load {where}")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    make = getattr(module, attr)
    return make(**spec.get("factory_args", {}))  # type: ignore[no-any-return]


def _child() -> int:
    """The load generator process: spec → build → ready → go → results."""
    hard_stop = time.monotonic()
    spec = json.loads(sys.stdin.readline())
    factory = load_factory(spec)
    stride, offset = int(spec.get("stride", 1)), int(spec.get("offset", 0))
    indices = range(offset, offset + stride * int(spec["prebuild"]), stride)
    requests = _Requests(factory, indices)
    _emit({"ready": True})
    go = json.loads(sys.stdin.readline())
    start = float(go["go"])
    budget = float(spec["duration"]) + float(spec["timeout"]) + 10.0
    hard_stop = max(hard_stop, start) + budget
    rec = _Recorder()
    cpu0 = _cpu()
    if spec.get("engine", "auto") in ("auto", "epoll") and hasattr(select, "epoll"):
        engine = _Epoll(spec, requests, rec)
        try:
            end = (engine.closed if spec["mode"] == "closed" else engine.open)(spec, start, hard_stop)
        finally:
            engine.close()
    else:
        run = _closed if spec["mode"] == "closed" else _open

        async def bounded() -> float:
            try:
                async with asyncio.timeout(max(0.0, hard_stop - time.monotonic())):
                    return await run(spec, requests, start, rec)
            except TimeoutError:
                rec.errors["generator overran its time budget"] += 1
                return time.monotonic()

        end = asyncio.run(bounded())
    _emit(
        {
            "start": start,
            "end": end,
            "cpu": _cpu() - cpu0,
            "latencies": rec.latencies,
            "lags": rec.lags,
            "statuses": {str(k): v for k, v in rec.statuses.items()},
            "errors": dict(rec.errors),
            "acked": rec.acked if spec.get("record_acked") else [],
            "on_the_fly": requests.on_the_fly,
            "engine": "epoll"
            if spec.get("engine", "auto") in ("auto", "epoll") and hasattr(select, "epoll")
            else "asyncio",
        }
    )
    return 0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------- parent side


def run_phase(
    *,
    host: str,
    port: int,
    mode: str,
    duration: float,
    factory: str,
    factory_args: dict[str, Any],
    connections: int = 32,
    rate: float = 0.0,
    inflight: int = 256,
    timeout: float = 5.0,
    procs: int = 1,
    prebuild: int | None = None,
    record_acked: bool = False,
    engine: str = "auto",
    build_timeout: float = 120.0,
    probe: Callable[[], Any] | None = None,
    keep_raw: bool = False,
) -> dict[str, Any]:
    """Run one phase in `procs` generator processes started together; returns the merged summary
    (with the processes' own results under "raw" if `keep_raw`, for `summarize_chunks`).

    `factory` is "module:function" or "/path/file.py:function"; function(**factory_args) must return a
    RequestFactory. Request indices
    are split between processes by stride, so every request of the phase is distinct. `probe`, if given, is
    called when the phase starts and when its results are in; both values are returned as "probes".
    """
    if mode not in ("closed", "open"):
        raise ValueError(f"mode must be 'closed' or 'open', not {mode!r}")
    if duration <= 0 or (mode == "open" and rate <= 0):
        raise ValueError("duration (and, for the open loop, rate) must be positive")
    procs = max(1, procs)
    count = math.ceil(rate * duration) if mode == "open" else 0
    specs = []
    for k in range(procs):
        spec = {
            "host": host,
            "port": port,
            "mode": mode,
            "duration": duration,
            "timeout": timeout,
            "factory": factory,
            "factory_args": factory_args,
            "stride": procs,
            "offset": k,
            "record_acked": record_acked,
            "engine": engine,
        }
        if mode == "closed":
            spec["connections"] = max(1, connections // procs + (1 if k < connections % procs else 0))
            spec["prebuild"] = prebuild if prebuild is not None else 0
            spec["prebuild"] = math.ceil(spec["prebuild"] / procs)
        else:
            spec["rate"] = rate
            spec["count"] = len(range(k, count, procs))
            spec["inflight"] = max(1, inflight // procs)
            spec["prebuild"] = spec["count"]
        specs.append(spec)

    children: list[subprocess.Popen[str]] = []
    try:
        for spec in specs:
            child = subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
                # A plain script: the generator imports the standard library and the factory's file only.
                [sys.executable, os.path.abspath(__file__)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONHASHSEED": "0"},
            )
            children.append(child)
            assert child.stdin is not None
            child.stdin.write(json.dumps(spec) + "\n")
            child.stdin.flush()
        for child in children:
            if not _read_json(child, build_timeout).get("ready"):
                raise RuntimeError("load generator did not get ready")
        start = time.monotonic() + 0.2
        for child in children:
            assert child.stdin is not None
            child.stdin.write(json.dumps({"go": start}) + "\n")
            child.stdin.flush()
        if probe is not None:
            time.sleep(max(0.0, start - time.monotonic()))
            first = probe()
        results = [_read_json(child, duration + timeout + 15.0) for child in children]
        last = probe() if probe is not None else None
    finally:
        for child in children:
            _reap(child)
    summary = summarize(results, mode=mode, duration=duration, scheduled=count, rate=rate)
    if probe is not None:
        summary["probes"] = (first, last)
    if keep_raw:
        summary["raw"] = results
    return summary


def summarize_chunks(chunks: list[dict[str, Any]], *, mode: str) -> dict[str, Any]:
    """One summary for several runs of the same phase (`run_phase(keep_raw=True)`), as if they were one
    run lasting their summed elapsed time: latencies pooled, req/s over the time they actually ran."""
    elapsed = sum(chunk["elapsed_s"] for chunk in chunks)
    results = [r for chunk in chunks for r in chunk["raw"]]
    summary = summarize(results, mode=mode, duration=sum(c["duration_s"] for c in chunks), elapsed=elapsed)
    summary["chunks"] = len(chunks)
    return summary


def _read_json(child: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError(f"load generator (pid {child.pid}) did not answer within {timeout:.0f}s")
    line = child.stdout.readline()
    if not line:
        raise RuntimeError(f"load generator (pid {child.pid}) exited with {child.wait(5)}")
    return json.loads(line)  # type: ignore[no-any-return]


def _reap(child: subprocess.Popen[str]) -> None:
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout=5)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of already sorted values; 0.0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize(
    results: list[dict[str, Any]],
    *,
    mode: str,
    duration: float,
    scheduled: int = 0,
    rate: float = 0.0,
    elapsed: float | None = None,
) -> dict[str, Any]:
    latencies = sorted(x for r in results for x in r["latencies"])
    lags = sorted(x for r in results for x in r["lags"])
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for r in results:
        statuses.update(r["statuses"])
        errors.update(r["errors"])
    if elapsed is None:  # one run: from the first start to the last end of its processes
        elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
    elapsed = max(elapsed, 1e-9)
    completed = len(latencies)
    ok = sum(v for k, v in statuses.items() if k.startswith("2"))
    ms = 1000.0
    summary: dict[str, Any] = {
        "mode": mode,
        "duration_s": duration,
        "elapsed_s": round(elapsed, 3),
        "requests": completed + sum(v for k, v in errors.items() if not k.startswith("http ")),
        "responses": completed,
        "ok": ok,
        "rps": ok / elapsed,
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "statuses": dict(statuses),
        "p50_ms": percentile(latencies, 50) * ms,
        "p90_ms": percentile(latencies, 90) * ms,
        "p99_ms": percentile(latencies, 99) * ms,
        "p999_ms": percentile(latencies, 99.9) * ms,
        "max_ms": (latencies[-1] if latencies else 0.0) * ms,
        "mean_ms": (sum(latencies) / completed if completed else 0.0) * ms,
        "over_1s": sum(1 for x in latencies if x > 1.0),
        "generator_cpu_s": sum(r["cpu"] for r in results),
        "generator_cpu_share": sum(r["cpu"] for r in results) / elapsed,
        "generator_procs": len(results),
        "generator_engine": results[0].get("engine", "?"),
        "built_on_the_fly": sum(r["on_the_fly"] for r in results),
        "acked": sorted(i for r in results for i in r["acked"]),
    }
    if mode == "open":
        summary.update(
            target_rps=rate,
            scheduled=scheduled,
            dispatch_lag_p50_ms=percentile(lags, 50) * ms,
            dispatch_lag_p99_ms=percentile(lags, 99) * ms,
            dispatch_lag_max_ms=(lags[-1] if lags else 0.0) * ms,
        )
    return summary


if __name__ == "__main__":
    raise SystemExit(_child())
