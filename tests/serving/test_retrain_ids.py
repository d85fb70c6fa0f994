"""A retrain over integer raw ids with new users whose ids are words or non-canonical numbers (the README's "fan"
on ml-latest-small): it succeeds, and "01", " 1" and "1" stay three users."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fusionrec.data import Interactions
from tests.serving.conftest import make_client

KEY = {"X-API-Key": "k"}


def test_retrain_with_new_non_integer_and_non_canonical_ids(tmp_path: Path) -> None:
    from fusionrec.models import make_model
    from fusionrec.serving import load_bundle, save_bundle

    rng = np.random.default_rng(0)
    pairs = np.unique(np.c_[rng.integers(1, 31, 300), rng.integers(100, 140, 300)], axis=0)
    users, items = pairs[:, 0], pairs[:, 1]
    train = Interactions.from_arrays(users, items, explicit=False)
    model = make_model("ALS", n_factors=4, epochs=3, seed=0).fit(train)
    bundle = save_bundle(tmp_path / "als", model, train)
    for client in make_client(bundle, api_key="k"):
        events = [{"user": u, "item": "101"} for u in ("fan", "01", " 1")] + [{"user": "1", "item": "102"}]
        r = client.post("/events", json={"events": events}, headers=KEY)
        assert r.status_code == 200, r.text
        r = client.post("/admin/retrain", params={"wait": True}, headers=KEY)
        assert r.status_code == 202, r.text
        status = client.get("/admin/retrain", headers=KEY).json()
        assert status["state"] == "idle" and status["last_error"] is None, status
        for u in ("fan", "01", " 1", "1"):
            assert client.get("/recommend", params={"user": u, "k": 3}).status_code == 200
    fresh = load_bundle(bundle)
    ids = [str(x) for x in fresh.user_ids.ids.tolist()]
    assert {"fan", "01", " 1", "1"} <= set(ids) and len(ids) == len(set(ids)) == train.n_users + 3
