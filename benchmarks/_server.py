"""A fusionrec server in a child process for the serving benchmarks: a free port, start, wait for /health, stop.

A benchmark script calls ``running_server(__file__, bundle, store, ...)`` and handles ``--serve-child`` in its
``__main__`` with :func:`serve_child_from_argv`.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(
    script: str, bundle: Path, store: str, *, settings: dict[str, Any] | None = None, start_timeout_s: float = 120,
    stderr: Any = subprocess.DEVNULL,
) -> Iterator[str]:  # fmt: skip
    """Start ``script --serve-child`` serving ``bundle`` (ServingSettings overrides in ``settings``); yield its URL."""
    import httpx

    port = free_port()
    cmd = [sys.executable, script, "--serve-child", str(bundle), str(port), store, json.dumps(settings or {})]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def serve_child_from_argv(argv: list[str]) -> None:
    """The child side: ``--serve-child BUNDLE PORT STORE SETTINGS_JSON`` -> uvicorn on 127.0.0.1."""
    import uvicorn

    from fusionrec.serving import ServingSettings, create_app

    bundle, port, store, extra = argv[0], int(argv[1]), argv[2], json.loads(argv[3])
    settings = ServingSettings(bundle_path=Path(bundle), store_url=store, sync_interval_s=0, **extra)
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False)
