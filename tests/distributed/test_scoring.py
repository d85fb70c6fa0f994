"""Batch scoring and evaluation sharded by user give the single-process lists and figures."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusionrec.data import Interactions
from fusionrec.errors import ConfigError, UnknownIdError
from fusionrec.evaluation import evaluate_ranking
from fusionrec.models import Recommender
from fusionrec.rerank import MMR
from tests.conftest import make_interactions


@pytest.fixture(scope="module")
def fitted() -> tuple[Recommender, Interactions, Interactions, Interactions]:
    from fusionrec.models.linear import EASE

    data = make_interactions(240, 90, seed=3, explicit=False)
    rng = np.random.default_rng(0)
    r = rng.random(data.nnz)
    train, valid, test = data.select(r >= 0.3), data.select((r >= 0.15) & (r < 0.3)), data.select(r < 0.15)
    return EASE(reg=30.0).fit(train), train, valid, test


def _assert_same(a, b) -> None:  # type: ignore[no-untyped-def]
    assert a.metrics.keys() == b.metrics.keys()
    for key, value in a.metrics.items():
        assert b.metrics[key] == pytest.approx(value, abs=1e-12, nan_ok=True), key
    assert a.per_user.keys() == b.per_user.keys()
    for key in a.per_user:
        np.testing.assert_allclose(b.per_user[key], a.per_user[key], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(a.users, b.users)
    np.testing.assert_array_equal(a.recommendations, b.recommendations)
    assert a.unseen_users == b.unseen_users


@pytest.mark.parametrize("address", [None, "cluster"])
def test_evaluation_equals_single_process(fitted, address, request, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from fusionrec.distributed import ScoringStats, evaluate_ranking_ray

    model, train, valid, test = fitted
    where = None if address is None else request.getfixturevalue("ray_cluster")
    cand = np.arange(0, 90, 2)
    kwargs = dict(k=(5, 10), exclude=[train, valid], compute_auc=True, batch_size=17, cold_users=True)
    rng = np.random.default_rng(1)
    feats, genres = rng.normal(size=(90, 4)), (rng.random((90, 3)) < 0.4).astype(float)
    fair = {"rerank": MMR(feats, lam=0.5), "rerank_depth": 30, "item_groups": genres, "user_groups": np.arange(240) % 3}
    for extra in ({}, {"candidates": cand, "item_features": feats}, fair):
        ref = evaluate_ranking(model, train, test, **kwargs, **extra)  # type: ignore[arg-type]
        stats = ScoringStats()
        got = evaluate_ranking_ray(
            model.save(tmp_path / "m") if extra else model,  # a model directory or the fitted model
            train, test, address=where, num_workers=2, num_shards=5, stats=stats, **kwargs, **extra,
        )  # fmt: skip
        _assert_same(ref, got)
        assert ref.info.keys() == got.info.keys() - {"workers", "shards"}
        assert ("CalibrationKL@10" in got.metrics) == ("item_groups" in extra)  # the fairness extras reached it
        assert stats.shards == 5 and stats.payload_bytes > 0 and len(stats.task_seconds) == 5
        assert stats.workers == (1 if address is None else 2)


def test_ray_evaluator_takes_every_parameter_of_evaluate_ranking() -> None:
    """Both evaluators run one plan: every parameter of evaluate_ranking, with its default, is the Ray one's."""
    from fusionrec.distributed import evaluate_ranking_ray

    ref = inspect.signature(evaluate_ranking).parameters
    got = inspect.signature(evaluate_ranking_ray).parameters
    for name, p in ref.items():
        assert name in got, f"evaluate_ranking_ray lacks {name!r}"
        assert got[name].default == p.default and got[name].kind == p.kind, name


def test_batch_recommend_writes_raw_top_k(fitted, ray_cluster: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from fusionrec.distributed import ScoringStats, batch_recommend_ray
    from fusionrec.serving.bundle import save_bundle

    model, train, _, _ = fitted
    bundle = save_bundle(tmp_path / "bundle", model, train)
    users = model.user_id_values_[::-1][:50]  # any order, raw ids
    stats = ScoringStats()
    out = batch_recommend_ray(
        bundle, users, 7, tmp_path / "top.parquet", address=ray_cluster, num_shards=4, batch_size=8, stats=stats
    )
    frame = pd.read_parquet(out)
    assert list(frame.columns) == ["user", "item", "rank", "score"]
    items, scores = model.recommend_ids(users, 7)
    assert frame["user"].tolist() == np.repeat(users, 7).tolist()
    assert frame["item"].tolist() == items.ravel().tolist()
    assert frame["rank"].tolist() == list(range(1, 8)) * 50
    np.testing.assert_array_equal(frame["score"].to_numpy(), scores.ravel())
    assert stats.rows_written == 350 and stats.shards == 4 and stats.workers == 2
    # every user, in process (no Ray): the same rows as over Ray
    local = batch_recommend_ray(model, None, 3, tmp_path / "all.parquet", address=None)
    ray_all = batch_recommend_ray(model, None, 3, tmp_path / "all_ray.parquet", address=ray_cluster)
    pd.testing.assert_frame_equal(pd.read_parquet(local), pd.read_parquet(ray_all))
    assert pd.read_parquet(local)["user"].nunique() == train.n_users


def test_bad_arguments_raise_typed_errors(fitted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from fusionrec.distributed import batch_recommend_ray, evaluate_ranking_ray

    model, train, _, test = fitted
    with pytest.raises(UnknownIdError, match="nobody"):
        batch_recommend_ray(model, ["nobody"], 5, tmp_path / "x.parquet", address=None)
    with pytest.raises(ConfigError, match="k must"):
        batch_recommend_ray(model, None, 0, tmp_path / "x.parquet", address=None)
    with pytest.raises(ConfigError, match="num_shards"):
        evaluate_ranking_ray(model, train, test, address=None, num_shards=0)
    with pytest.raises(ConfigError, match="neither a bundle"):
        batch_recommend_ray(tmp_path, None, 5, tmp_path / "x.parquet", address=None)
