"""The load generator process (`python app/bench/loadgen_child.py`, started by `loadgen.run_phase`): reads
its phase spec on stdin, builds its requests, answers ready, waits for go, runs the phase on one of the two
engines and writes its raw results on stdout (the protocol is described in app/bench/loadgen.py).

The asyncio engine (streams from `asyncio.open_connection`) is the portable fallback; the epoll engine,
the default on Linux, is in loadgen_epoll.py. Standard library only, besides the factory's own file.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import resource
import select
import sys
import time
from typing import Any

if __package__:  # imported as app.bench.loadgen_child
    from app.bench import loadgen_epoll as ep
else:  # run as a script, the usual way: its folder is first on sys.path, and the app is not imported
    import loadgen_epoll as ep  # type: ignore[no-redef]


class _Conn:
    __slots__ = ("reader", "used", "writer")

    def __init__(self) -> None:
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0.0  # when its last response ended

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()  # no FIN handshake to wait for: the next request opens a new one
        self.reader = self.writer = None


async def _exchange(conn: _Conn, host: str, port: int, request: bytes) -> int:
    """Send one request on `conn` (opened if needed), read the whole response; returns the status."""
    if conn.writer is not None and time.monotonic() - conn.used >= ep.IDLE_REUSE:
        conn.close()
    if conn.writer is None:
        conn.reader, conn.writer = await asyncio.open_connection(host, port, limit=ep.MAX_HEADER)
    reader, writer = conn.reader, conn.writer
    assert reader is not None
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status, length, close = ep.parse_head(head[:-4])
    if length > 0:
        await reader.readexactly(length)
    elif length < 0:
        await reader.read()  # no length: the body runs to the end of the connection
        close = True
    if close:
        conn.close()
    conn.used = time.monotonic()
    return status


async def _closed(spec: dict[str, Any], requests: ep.Requests, start: float, rec: ep.Recorder) -> float:
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


async def _open(spec: dict[str, Any], requests: ep.Requests, start: float, rec: ep.Recorder) -> float:
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


def load_factory(spec: dict[str, Any]) -> ep.RequestFactory:
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
    requests = ep.Requests(factory, indices)
    _emit({"ready": True})
    go = json.loads(sys.stdin.readline())
    start = float(go["go"])
    budget = float(spec["duration"]) + float(spec["timeout"]) + 10.0
    hard_stop = max(hard_stop, start) + budget
    rec = ep.Recorder()
    cpu0 = _cpu()
    use_epoll = spec.get("engine", "auto") in ("auto", "epoll") and hasattr(select, "epoll")
    if use_epoll:
        engine = ep.Epoll(spec, requests, rec)
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
            "engine": "epoll" if use_epoll else "asyncio",
        }
    )
    return 0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(_child())
