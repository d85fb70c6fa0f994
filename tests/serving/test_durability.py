"""kill -9 the server after acknowledged writes: every acknowledged event is there after a restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fusionrec.data import Interactions


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(bundle: Path, store: Path, port: int) -> subprocess.Popen[bytes]:
    log = bundle.parent / f"server-{port}-{time.monotonic_ns()}.log"
    env = {
        **os.environ,
        "FUSIONREC_SERVE_BUNDLE_PATH": str(bundle),
        "FUSIONREC_SERVE_STORE_URL": f"sqlite:///{store}",
        "FUSIONREC_SERVE_SYNC_INTERVAL_S": "0",
    }
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "fusionrec.serving.asgi:app_from_env",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start within 60 s")


def test_no_acknowledged_event_lost_after_kill_9(tmp_path: Path, implicit_train: Interactions) -> None:
    from fusionrec.models import MostPopular
    from fusionrec.serving import save_bundle
    from fusionrec.serving.store import SQLiteStore

    bundle = save_bundle(tmp_path / "b", MostPopular().fit(implicit_train), implicit_train)
    store = tmp_path / "events.db"
    port = _free_port()
    proc = _start(bundle, store, port)
    acked: list[int] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            for j in range(30):
                r = c.post("/events", json={"events": [{"user": f"d{j % 4}", "item": f"i{j % 9}", "value": 1.0}]})
                assert r.status_code == 200
                acked += r.json()["seqs"]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    with SQLiteStore(store) as s:
        assert {e.seq for e in s.events_since(0)} >= set(acked)
    proc = _start(bundle, store, port)
    try:
        h = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).json()
        assert h["events_applied"] == max(acked)
        hist = httpx.get(f"http://127.0.0.1:{port}/users/d1/history", timeout=10).json()["items"]
        assert {x["item"] for x in hist} >= {"i1"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            pytest.fail("server did not stop on SIGTERM")
