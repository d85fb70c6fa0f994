"""End to end with the real ALS: its own fold_in drives online updates; the CLI trains and serves a bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_interactions


def test_online_uses_als_fold_in(tmp_path: Path) -> None:
    als_mod = pytest.importorskip("fusionrec.models.mf.als")
    from fusionrec.serving import load_bundle, save_bundle
    from fusionrec.serving.engine import OnlineModel
    from fusionrec.serving.store import Event

    train = make_interactions(n_users=40, n_items=30, seed=5, explicit=False)
    model = als_mod.ALS(n_factors=4, epochs=3, reg=0.1, seed=0).fit(train)
    state = OnlineModel(load_bundle(save_bundle(tmp_path / "als", model, train)))
    assert state.is_factor and state.index_kind == "exact"
    state.apply_events([Event("new", "i1", 1.0, 1, 1), Event("new", "i2", 1.0, 1, 2)])
    items = [state.item_index("i1"), state.item_index("i2")]
    row = int(model.fold_in_user(items)[0])  # the model's own exact fold-in, on the original
    got = state.model.factors().user[state.model_row(state.require_user("new"))]
    np.testing.assert_allclose(got, model.factors().user[row], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.realdata
def test_cli_train_then_serve_ml_latest_small(data_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("fusionrec.models.mf.als")
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from fusionrec.cli.main import app as cli
    from fusionrec.serving import ServingSettings, create_app

    out = tmp_path / "mls"
    res = CliRunner().invoke(
        cli,
        [
            "train",
            "ml-latest-small",
            "--model",
            "ALS",
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
            "-p",
            "n_factors=16",
            "-p",
            "epochs=4",
            "--implicit",
        ],
    )
    assert res.exit_code == 0, res.output
    settings = ServingSettings(bundle_path=out, store_url=f"sqlite:///{tmp_path}/e.db", sync_interval_s=0)
    with TestClient(create_app(settings)) as c:
        recs = c.get("/recommend", params={"user": 1, "k": 10}).json()["items"]
        assert len(recs) == 10 and all(r["title"] for r in recs)
        toy = c.get("/recommend", params={"user": 1, "k": 5, "genres": "Animation"}).json()["items"]
        assert len(toy) == 5
        before = [r["item"] for r in c.get("/recommend", params={"user": "fresh", "k": 5}).json().get("items", [])]
        assert before == []  # unknown yet (404)
        assert (
            c.post(
                "/events", json={"events": [{"user": "fresh", "item": 1}, {"user": "fresh", "item": 3114}]}
            ).status_code
            == 200
        )
        fresh = c.get("/recommend", params={"user": "fresh", "k": 5}).json()["items"]
        assert len(fresh) == 5 and not {1, 3114} & {r["item"] for r in fresh}
        ex = c.get("/explain", params={"user": "fresh", "item": fresh[0]["item"]}).json()
        assert {h["item"] for h in ex["similar_history"]} == {1, 3114}
