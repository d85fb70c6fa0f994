from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import Interactions
from fusionrec.ensemble import Stacking, WeightedBlend, activity_features
from fusionrec.ensemble.stacking import _tree_arrays, _trees_sum
from fusionrec.errors import ConfigError

from ..models.contract import RecommenderContract
from ._helpers import MEMBERS, Fixed, grid


class TestStackingRidgeContract(RecommenderContract):
    def make_model(self) -> Stacking:
        return Stacking(models=MEMBERS, meta="ridge", seed=1)

    def test_save_load_roundtrip(self, train: Interactions, tmp_path: Path) -> None:
        model = self._fit(train)
        model.save(tmp_path / "m")
        loaded = Stacking.load(tmp_path / "m")
        assert loaded.get_params() == model.get_params()
        np.testing.assert_allclose(loaded.score(np.arange(5)), model.score(np.arange(5)), rtol=1e-5, atol=1e-5)


class TestStackingGBMContract(TestStackingRidgeContract):
    def make_model(self) -> Stacking:
        return Stacking(models=MEMBERS, meta="gbm", meta_params={"n_estimators": 20, "max_depth": 2}, seed=1)


def _members_err_differently(seed: int = 0) -> tuple[list[Fixed], Interactions, Interactions, Interactions]:
    """Member A is accurate for heavy users and poor for light ones; member B the reverse."""
    rng = np.random.default_rng(seed)
    n_u, n_i = 400, 80
    truth = 3 + 0.5 * rng.normal(size=(n_u, 1)) + 0.5 * rng.normal(size=(1, n_i)) + 0.3 * rng.normal(size=(n_u, n_i))
    heavy = np.arange(n_u) < n_u // 2
    sd_a = np.where(heavy, 0.15, 1.0)[:, None]
    sd_b = np.where(heavy, 1.0, 0.15)[:, None]
    tables = [truth + sd_a * rng.normal(size=truth.shape), truth + sd_b * rng.normal(size=truth.shape)]
    density = np.where(heavy, 0.5, 0.12)[:, None]
    u, i = np.nonzero(rng.random((n_u, n_i)) < density)
    y = truth[u, i] + rng.normal(0, 0.1, len(u))
    part = rng.choice(3, size=len(u), p=[0.5, 0.25, 0.25])
    train, valid, test = (grid(u[part == k], i[part == k], y[part == k], n_u, n_i) for k in range(3))
    return [Fixed(t).fit(train) for t in tables], train, valid, test


def _rmse(model, test: Interactions) -> float:
    pred = model.predict(test.row_indices(), test.matrix.indices)
    return float(np.sqrt(np.mean((pred - test.matrix.data) ** 2)))


def test_stacking_beats_best_member_when_members_err_differently() -> None:
    members, _, valid, test = _members_err_differently()
    best = min(_rmse(m, test) for m in members)
    gbm = Stacking(models=members, meta="gbm").fit_blend(valid)
    blend = WeightedBlend(models=members).fit_blend(valid)
    r_gbm, r_blend = _rmse(gbm, test), _rmse(blend, test)
    assert r_gbm < 0.6 * best
    assert r_gbm < 0.7 * r_blend


def test_activity_features() -> None:
    m = grid(np.array([0, 0, 0, 1]), np.array([0, 1, 2, 0]), np.array([1.0, 3.0, 5.0, 4.0]), 3, 3)
    uf, itf = activity_features(m.matrix)
    np.testing.assert_allclose(uf[:, 0], np.log1p([3, 1, 0]), rtol=1e-6)
    np.testing.assert_allclose(uf[:, 1], [2.0, 0.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(itf[:, 0], np.log1p([2, 1, 1]), rtol=1e-6)
    np.testing.assert_allclose(itf[0, 1], np.std([1.0, 4.0], ddof=1), rtol=1e-6)


def test_tree_arrays_reproduce_sklearn() -> None:
    from sklearn.ensemble import GradientBoostingRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 5))
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * rng.normal(size=500)
    gbr = GradientBoostingRegressor(n_estimators=30, max_depth=3, random_state=0).fit(X, y)
    t = _tree_arrays(gbr)
    Xt = rng.normal(size=(300, 5))
    raw = _trees_sum(Xt, t["feature"], t["threshold"], t["left"], t["right"], t["value"], t["offsets"])
    base = gbr.predict(Xt[:1])[0] - gbr.learning_rate * raw[0]
    np.testing.assert_allclose(base + gbr.learning_rate * raw, gbr.predict(Xt), rtol=1e-10, atol=1e-10)


def test_ridge_meta_reduces_to_least_squares_without_penalty() -> None:
    members, _, valid, _ = _members_err_differently(1)
    st = Stacking(models=members, meta="ridge", meta_params={"alpha": 0.0}, clip=False).fit_blend(valid)
    u, i, y = valid.row_indices(), valid.matrix.indices, valid.matrix.data.astype(np.float64)
    Z = st._design(st.member_predictions(u, i), u, i).astype(np.float64)
    sol = np.linalg.lstsq(np.column_stack([np.ones(len(y)), Z]), y, rcond=None)[0]
    np.testing.assert_allclose(st.coef_, sol[1:], rtol=1e-6, atol=1e-8)
    assert st.intercept_ == pytest.approx(sol[0], rel=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [{"meta": "forest"}, {"meta": "ridge", "meta_params": {"depth": 2}}, {"meta": "gbm", "meta_params": {"bad": 1}}],
)
def test_bad_meta_raises(interactions: Interactions, kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        Stacking(models=MEMBERS, **kwargs).fit(interactions)
