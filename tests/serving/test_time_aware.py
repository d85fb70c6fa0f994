"""Time-aware models served end to end (issue 21): the training timestamps travel in the bundle and the event store's
times (arrival order where none is given) flow into retrains, so ``POST /admin/retrain``, scheduled retrains and
``fusionrec forget BUNDLE USER --retrain`` work for SASRec, GRU4Rec, CNNLSTM and TimeSVD++, with the order of each
user's events preserved."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import Interactions
from tests.conftest import make_interactions
from tests.serving.conftest import make_client

KEY = {"X-API-Key": "k"}

SEQUENTIAL = {"n_factors": 8, "max_len": 12, "epochs": 1, "seed": 0}
CASES = {
    "GRU4Rec": SEQUENTIAL,
    "SASRec": SEQUENTIAL,
    "CNNLSTM": SEQUENTIAL,
    "TimeSVDpp": {"n_factors": 4, "epochs": 2, "seed": 0},
}
#: one fast case always; the other torch models only in slow runs
FAST = {"GRU4Rec", "TimeSVDpp"}


def _train(name: str) -> Interactions:
    return make_interactions(n_users=30, n_items=25, seed=1, explicit=name == "TimeSVDpp")


def _bundle(tmp_path: Path, name: str) -> tuple[Path, Interactions]:
    from fusionrec.models import make_model
    from fusionrec.serving import save_bundle

    train = _train(name)
    side = None
    if name == "CNNLSTM":  # reads item images: dense features of an image modality
        from fusionrec.data.side import SideInfo

        feats = np.random.default_rng(0).normal(size=(train.n_items, 16)).astype(np.float32)
        side = SideInfo(item_features={"image": feats}, item_kinds={"image": "image"})
    model = make_model(name, **CASES[name]).fit(train, side)
    return save_bundle(tmp_path / name, model, train, side=side), train


def _user_order(bundle: Path, user: str) -> list[str]:
    """The items of ``user`` in the retrained bundle, ordered as a time-aware model orders them (time, then item
    index: :func:`fusionrec.models.sequential.user_sequences`)."""
    from fusionrec.serving import load_bundle

    b = load_bundle(bundle)
    assert b.timestamps is not None, "the retrained bundle lost its timestamps"
    u = [str(x) for x in b.user_ids.ids.tolist()].index(user)
    seen = b.model.seen_
    lo, hi = seen.indptr[u], seen.indptr[u + 1]
    items, ts = seen.indices[lo:hi], b.timestamps[lo:hi]
    order = np.lexsort((items, ts))
    return [str(b.item_ids.ids[i]) for i in items[order]]


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in CASES])
def test_retrain_over_http_keeps_event_order(tmp_path: Path, name: str) -> None:
    bundle, train = _bundle(tmp_path, name)
    gone = str(train.user_ids.ids[3])
    # posted within the same second (no timestamp: arrival time), in an order that is not the item index order
    ids = [str(x) for x in train.item_ids.ids.tolist()]
    burst, later = [ids[j] for j in (9, 2, 7, 0)], [ids[5]]
    value = 4.0 if name == "TimeSVDpp" else 1.0
    for client in make_client(bundle, api_key="k"):
        for batch in (burst, later):
            events = [{"user": "newbie", "item": i, "value": value} for i in batch]
            r = client.post("/events", json={"events": events}, headers=KEY)
            assert r.status_code == 200, r.text
        assert client.delete(f"/users/{gone}", headers=KEY).status_code == 204
        r = client.post("/admin/retrain", params={"wait": True}, headers=KEY)
        assert r.status_code == 202, r.text
        status = client.get("/admin/retrain", headers=KEY).json()
        assert status["state"] == "idle" and status["last_error"] is None, status
        assert client.get("/recommend", params={"user": "newbie", "k": 3}).status_code == 200
    from fusionrec.serving import load_bundle

    fresh = load_bundle(bundle)
    ids = [str(x) for x in fresh.user_ids.ids.tolist()]
    assert gone not in ids and "newbie" in ids
    assert _user_order(bundle, "newbie") == burst + later
    # a bundle user's training rows keep their own times
    keep = str(train.user_ids.ids[0])
    t0 = train.timestamps[train.matrix.indptr[0] : train.matrix.indptr[1]]
    u = ids.index(keep)
    lo, hi = fresh.model.seen_.indptr[u], fresh.model.seen_.indptr[u + 1]
    assert sorted(fresh.timestamps[lo:hi].tolist()) == sorted(t0.tolist())


def test_sequential_model_sequence_follows_the_events(tmp_path: Path) -> None:
    """The refitted GRU4Rec's own sequence of the new user is the posted order (read from the model's declared
    ``sequences_``: item + 1, 0 = padding)."""
    bundle, train = _bundle(tmp_path, "GRU4Rec")
    posted = [str(train.item_ids.ids[j]) for j in (9, 2, 7, 0, 5)]
    for client in make_client(bundle, api_key="k"):
        events = [{"user": "newbie", "item": i} for i in posted]
        assert client.post("/events", json={"events": events}, headers=KEY).status_code == 200
        assert client.post("/admin/retrain", params={"wait": True}, headers=KEY).status_code == 202
    from fusionrec.serving import load_bundle

    b = load_bundle(bundle)
    u = [str(x) for x in b.user_ids.ids.tolist()].index("newbie")
    seq = b.model.sequences_[u]
    got = [str(b.item_ids.ids[i - 1]) for i in seq[seq > 0].tolist()]
    assert got == posted


def test_client_times_order_events_before_arrival(tmp_path: Path) -> None:
    """Events posted with explicit times are ordered by those times (arrival breaks ties only)."""
    bundle, train = _bundle(tmp_path, "GRU4Rec")
    a, b, c = (str(train.item_ids.ids[j]) for j in (3, 8, 1))
    for client in make_client(bundle, api_key="k"):
        events = [
            {"user": "late", "item": a, "timestamp": 2_000_000_300},
            {"user": "late", "item": b, "timestamp": 2_000_000_100},
            {"user": "late", "item": c, "timestamp": 2_000_000_200},
        ]
        assert client.post("/events", json={"events": events}, headers=KEY).status_code == 200
        assert client.post("/admin/retrain", params={"wait": True}, headers=KEY).status_code == 202
    assert _user_order(bundle, "late") == [b, c, a]


def test_scheduled_retrain_of_a_sequential_bundle(tmp_path: Path) -> None:
    """``--retrain-every`` (``retrain_interval_s``) retrains a GRU4Rec bundle without error."""
    bundle, train = _bundle(tmp_path, "GRU4Rec")
    item = str(train.item_ids.ids[4])
    for client in make_client(bundle, api_key="k", retrain_interval_s=0.5):
        r = client.post("/events", json={"events": [{"user": "newbie", "item": item}]}, headers=KEY)
        assert r.status_code == 200
        deadline = time.monotonic() + 60
        status: dict = {}
        while time.monotonic() < deadline:
            status = client.get("/admin/retrain", headers=KEY).json()
            if status["runs"] >= 1 and status["state"] != "running":
                break
            time.sleep(0.2)
        assert status["runs"] >= 1 and status["last_error"] is None, status
    from fusionrec.serving import load_bundle

    assert "newbie" in [str(x) for x in load_bundle(bundle).user_ids.ids.tolist()]


def test_cli_forget_retrain_of_a_sequential_bundle(tmp_path: Path) -> None:
    """``fusionrec forget BUNDLE USER --retrain`` on a GRU4Rec bundle exits 0 and the bundle no longer holds the
    user (it exited 2: "these interactions have no timestamps")."""
    from typer.testing import CliRunner

    from fusionrec.cli.main import app
    from fusionrec.serving import load_bundle

    bundle, train = _bundle(tmp_path, "GRU4Rec")
    gone = str(train.user_ids.ids[5])
    res = CliRunner().invoke(app, ["forget", str(bundle), gone, "--retrain"])
    assert res.exit_code == 0, res.output
    fresh = load_bundle(bundle)
    assert gone not in [str(x) for x in fresh.user_ids.ids.tolist()]
    assert fresh.timestamps is not None and len(fresh.timestamps) == fresh.model.seen_.nnz
