"""A small open-loop HTTP/1.1 load generator on raw asyncio streams (keep-alive connection pool).

The client shares the machine with the servers it measures, so it must cost as little CPU as possible: a
general-purpose client (httpx) spends about a millisecond of Python per request, which at 500 requests/s is half
a core taken from the servers.  This one writes the request line and headers itself and reads the answer by its
Content-Length (what uvicorn sends for JSON responses).

Open loop: request ``j`` is due at ``start + j / rate`` whatever happened before, and its latency runs from that
due time (waiting for a free connection counts), so a slow server cannot hide its queueing delay by slowing the
client down (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

#: (method, path, query params or None, JSON body or None)
Request = tuple[str, str, dict[str, Any] | None, Any]


class HttpError(Exception):
    pass


class _Pool:
    """Keep-alive connections to one ``127.0.0.1:port``, opened on demand up to ``size``."""

    def __init__(self, port: int, size: int) -> None:
        self.port = port
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        self.open = 0
        self.size = size

    async def acquire(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.idle.empty() and self.open < self.size:
            self.open += 1
            try:
                return await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                self.open -= 1
                raise
        return await self.idle.get()

    def release(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], ok: bool) -> None:
        if ok:
            self.idle.put_nowait(conn)
        else:
            conn[1].close()
            self.open -= 1

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait()[1].close()


def encode(req: Request, port: int) -> bytes:
    method, path, params, body = req
    if params:
        path = f"{path}?{urlencode(params)}"
    payload = b"" if body is None else json.dumps(body).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    head += f"Content-Length: {len(payload)}\r\n\r\n"
    return head.encode() + payload


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> int:
    writer.write(data)
    status_line = await reader.readline()
    if not status_line:
        raise HttpError("connection closed")
    status = int(status_line.split(b" ", 2)[1])
    length = None
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        if status in (204, 304) or 100 <= status < 200:  # no body by definition (uvicorn sends no length)
            return status
        raise HttpError("response without Content-Length")
    await reader.readexactly(length)
    return status


async def run_open_loop(
    ports: list[int],
    make_request: Callable[[int], Request],
    rate: float,
    seconds: float,
    max_requests: int,
    *,
    connections: int = 64,
    timeout: float = 10.0,
    on_tick: Callable[[], None] | None = None,
    on_result: Callable[[int, int, float, float], None] | None = None,
) -> tuple[list[float], int, float]:
    """Issue requests at ``rate``/s for ``seconds`` (at most ``max_requests``), spread round-robin over ``ports``.

    Returns (latencies in ms from each request's due time, error count, elapsed seconds).  A status >= 400, a
    transport error or a request slower than ``timeout`` counts as an error.  ``on_tick`` runs about every 2 s;
    ``on_result(j, status, due seconds from the start, latency ms)`` after each request (status 0: transport error
    or timeout).
    """
    pools = [_Pool(p, max(1, connections // len(ports))) for p in ports]
    lat: list[float] = []
    errors = 0

    async def one(j: int, due: float) -> None:
        nonlocal errors
        pool = pools[j % len(pools)]
        ok = False
        conn = None
        status = 0
        try:
            async with asyncio.timeout(timeout):
                conn = await pool.acquire()
                status = await _exchange(*conn, encode(make_request(j), pool.port))
                ok = True
                if status >= 400:
                    errors += 1
        except (OSError, HttpError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
            errors += 1
        finally:
            if conn is not None:
                pool.release(conn, ok)
        ms = (time.perf_counter() - due) * 1000
        lat.append(ms)
        if on_result is not None:
            on_result(j, status, due - start, ms)

    tasks = []
    start = time.perf_counter()
    next_tick = start
    j = 0
    while j < max_requests:
        due = start + j / rate
        if due - start >= seconds:
            break
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
        tasks.append(asyncio.create_task(one(j, due)))
        j += 1
        if on_tick is not None and time.perf_counter() >= next_tick:
            on_tick()
            next_tick += 2.0
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    for p in pools:
        p.close()
    return lat, errors, elapsed
