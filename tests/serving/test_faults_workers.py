"""Fault injection (issue 21): ``kill -9`` of one of two server processes sharing a SQLite store, during a retrain.

Two uvicorn processes serve the same bundle and the same store file (as two workers behind a load balancer do); the
client posts events to both, starts a retrain on the first (its fit lasts 30 s) and kills it with SIGKILL while the
retrain runs.  The second keeps answering, and through its sync sees every acknowledged event, including those the
killed one acknowledged; a process started again on the same bundle and store serves them all too.

It found a race that loses events without any kill: a worker that stored an event right after another worker's
event, before its next sync, applied its own event and moved its position past the other's, which it then never
applied (``test_a_worker_sees_the_events_another_stored_before_its_own``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serving._pgcluster import free_port
from tests.serving._workers import SLOW_NAME, SLOW_PATH, SlowTinyMF

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """One server process (``tests.serving._workers``) on a free port."""

    def __init__(self, bundle: Path, store: str, settings: dict[str, Any]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "tests.serving._workers", str(bundle), str(self.port), store, json.dumps(settings)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.log = Path(bundle).parent / f"worker-{self.port}.log"
        with self.log.open("wb") as log:  # the child holds its own copy of the descriptor
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)

    def wait_ready(self, timeout: float = 120) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base}/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("worker did not start")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for w in started:
        w.stop()


@pytest.mark.slow
def test_kill_9_of_one_worker_during_a_retrain(
    tmp_path: Path, implicit_train: Any, workers: list[Worker], monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    from fusionrec.models import registry
    from fusionrec.serving import load_bundle, save_bundle
    from fusionrec.serving.store import SQLiteStore

    monkeypatch.setitem(registry.MODELS, SLOW_NAME, SLOW_PATH)
    bundle = save_bundle(tmp_path / "b", SlowTinyMF(n_factors=6).fit(implicit_train), implicit_train, {})
    before = (bundle / "bundle.json").read_bytes()
    store = f"sqlite:///{tmp_path}/events.db"
    settings = {"sync_interval_s": 0.2, "retrain_params": {"fit_seconds": 30.0}}
    a, b = Worker(bundle, store, settings), Worker(bundle, store, settings)
    workers += [a, b]
    a.wait_ready()
    b.wait_ready()
    items = [str(x) for x in implicit_train.item_ids.ids.tolist()]
    acked: dict[int, tuple[str, str]] = {}
    j = 0

    def post(w: Worker, n: int) -> None:
        nonlocal j
        for _ in range(n):
            user, item = f"k{j % 10}", items[j // 10]  # each (user, item) once: a user's history counts its events
            r = httpx.post(f"{w.base}/events", json={"events": [{"user": user, "item": item}]}, timeout=30)
            assert r.status_code == 200, r.text
            acked[r.json()["seqs"][0]] = (user, item)
            j += 1

    post(a, 20)
    post(b, 20)
    r = httpx.post(f"{a.base}/admin/retrain", timeout=30)
    assert r.status_code == 202, r.text
    assert httpx.get(f"{a.base}/admin/retrain", timeout=30).json()["state"] == "running"
    post(a, 10)
    post(b, 10)
    os.kill(a.proc.pid, signal.SIGKILL)  # kill -9 while its retrain runs
    assert a.proc.wait(timeout=30) == -signal.SIGKILL
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{a.base}/health", timeout=5)

    # the other worker keeps serving and taking writes
    post(b, 20)
    for u in range(10):
        assert httpx.get(f"{b.base}/recommend", params={"user": f"k{u}", "k": 3}, timeout=30).status_code == 200
    top = max(acked)
    deadline = time.monotonic() + 60
    while httpx.get(f"{b.base}/health", timeout=30).json()["events_applied"] < top:
        assert time.monotonic() < deadline, "the surviving worker never applied every acknowledged event"
        time.sleep(0.2)

    # it sees every acknowledged event, those the killed worker acknowledged included
    def seen(w: Worker) -> dict[str, set[str]]:
        out = {}
        for u in range(10):
            r = httpx.get(f"{w.base}/users/k{u}/history", params={"limit": 1000}, timeout=30)
            assert r.status_code == 200, r.text
            out[f"k{u}"] = {str(x["item"]) for x in r.json()["items"]}
        return out

    want: dict[str, set[str]] = {}
    for user, item in acked.values():
        want.setdefault(user, set()).add(item)
    assert seen(b) == want
    with SQLiteStore(str(tmp_path / "events.db")) as s:
        assert {e.seq for e in s.events_since(0)} == set(acked)  # nothing acknowledged lost, nothing else stored

    # the killed retrain left the bundle as it was (loadable); a worker started again serves every event
    assert (bundle / "bundle.json").read_bytes() == before
    load_bundle(bundle)
    c = Worker(bundle, store, {**settings, "retrain_params": {"fit_seconds": 0.0}})
    workers.append(c)
    c.wait_ready()
    assert httpx.get(f"{c.base}/health", timeout=30).json()["events_applied"] == top
    assert seen(c) == want
    r = httpx.post(f"{c.base}/admin/retrain", params={"wait": True}, timeout=120)
    assert r.status_code == 202, r.text
    assert seen(c) == want


def test_a_worker_sees_the_events_another_stored_before_its_own(tiny_bundle: Path, implicit_train: Any) -> None:
    """Two engines on one store file, no sync between them: B stores an event right after A's; B applies both, A's
    first (before: B's position moved past A's event, which B never applied)."""
    from fusionrec.serving.engine import ServingEngine
    from fusionrec.serving.store import Event, open_store

    items = [str(x) for x in implicit_train.item_ids.ids.tolist()]
    url = f"sqlite:///{tiny_bundle}.shared.db"
    a = ServingEngine(tiny_bundle, open_store(url))
    b = ServingEngine(tiny_bundle, open_store(url))
    try:
        (sa,) = a.post_events([Event("x1", items[0])])
        (sb,) = b.post_events([Event("x2", items[1])])
        assert sb == sa + 1 and b.state.applied_seq == sb
        assert b.state.user_index("x1") is not None  # A's event, applied by B
        items_x1, _ = b.state.history_arrays(b.state.user_index("x1"))
        assert [b.state.item_raw[int(i)] for i in items_x1] == [items[0]]
        (sa2,) = a.post_events([Event("x1", items[2])])  # and A catches up with B's the same way
        assert a.state.applied_seq == sa2 and a.state.user_index("x2") is not None
    finally:
        a.close()
        b.close()
