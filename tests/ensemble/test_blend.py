from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import nnls

from fusionrec.data import Interactions
from fusionrec.ensemble import WeightedBlend, blend_weights, load_ensemble, split_validation
from fusionrec.errors import BundleError, ConfigError, DataError, NotFittedError
from fusionrec.models import BiasBaseline, Recommender, load_model

from ..models.contract import RecommenderContract
from ._helpers import MEMBERS, Fixed, grid


class TestWeightedBlendContract(RecommenderContract):
    def make_model(self) -> WeightedBlend:
        return WeightedBlend(models=MEMBERS, seed=2)

    def test_save_load_roundtrip(self, train: Interactions, tmp_path: Path) -> None:
        model = self._fit(train)
        model.save(tmp_path / "m")
        loaded = WeightedBlend.load(tmp_path / "m")
        assert type(loaded) is WeightedBlend
        assert loaded.get_params() == model.get_params()
        np.testing.assert_allclose(loaded.score(np.arange(5)), model.score(np.arange(5)), rtol=1e-5, atol=1e-6)
        assert sorted(p.name for p in (tmp_path / "m" / "members").iterdir()) == ["00", "01"]


def _tables(seed: int, n_u: int = 50, n_i: int = 30) -> tuple[np.ndarray, list[np.ndarray], Interactions]:
    rng = np.random.default_rng(seed)
    truth = 3 + rng.normal(size=(n_u, n_i))
    tables = [truth + rng.normal(0, s, truth.shape) for s in (0.3, 0.6)]
    tables.append(-truth + rng.normal(0, 0.5, truth.shape))  # anti-correlated member
    mask = rng.random((n_u, n_i)) < 0.3
    u, i = np.nonzero(mask)
    valid = grid(u, i, truth[u, i] + rng.normal(0, 0.2, len(u)), n_u, n_i)
    return truth, tables, valid


def _fixed_members(tables: list[np.ndarray], train: Interactions) -> list[Recommender]:
    return [Fixed(t).fit(train) for t in tables]


@pytest.mark.parametrize("nonnegative", [False, True])
def test_blend_weights_equal_least_squares(nonnegative: bool) -> None:
    _, tables, valid = _tables(0)
    blend = WeightedBlend(models=_fixed_members(tables, valid), nonnegative=nonnegative).fit_blend(valid)
    u, i, y = valid.row_indices(), valid.matrix.indices, valid.matrix.data.astype(np.float64)
    P = np.stack([t[u, i] for t in tables], axis=1).astype(np.float32).astype(np.float64)
    if nonnegative:
        Pc, yc = P - P.mean(0), y - y.mean()
        w, _ = nnls(Pc, yc)
        b = y.mean() - P.mean(0) @ w
        assert w[2] == 0.0  # the anti-correlated member is switched off
    else:
        sol = np.linalg.lstsq(np.column_stack([np.ones(len(y)), P]), y, rcond=None)[0]
        b, w = sol[0], sol[1:]
        assert w[2] < 0
    np.testing.assert_allclose(blend.weights_, w, rtol=1e-6, atol=1e-8)
    assert blend.intercept_ == pytest.approx(b, rel=1e-6, abs=1e-8)
    np.testing.assert_allclose(blend.predict(u, i), np.clip(b + P @ w, y.min(), y.max()), rtol=1e-5, atol=1e-4)


def test_blend_weights_l2_and_no_intercept() -> None:
    rng = np.random.default_rng(0)
    P = rng.normal(size=(200, 3))
    y = P @ [1.0, 2.0, -0.5] + 0.1 * rng.normal(size=200)
    w, b = blend_weights(P, y, nonnegative=False, fit_intercept=False, l2=3.0)
    assert b == 0.0
    np.testing.assert_allclose(w, np.linalg.solve(P.T @ P + 3.0 * np.eye(3), P.T @ y))


def test_fit_carves_validation_and_refits(interactions: Interactions) -> None:
    blend = WeightedBlend(models=MEMBERS, seed=0).fit(interactions)
    assert np.all(blend.weights_ >= 0) and np.isfinite(blend.valid_rmse_)
    # refit=True: members end up trained on all of train
    assert blend.members_[0].seen_.nnz == interactions.nnz
    kept = WeightedBlend(models=MEMBERS, seed=0, refit=False).fit(interactions)
    assert kept.members_[0].seen_.nnz < interactions.nnz
    np.testing.assert_allclose(kept.weights_, blend.weights_)
    # members given as instances are cloned, never fitted in place
    proto = BiasBaseline()
    WeightedBlend(models=[proto, "BiasBaseline"]).fit(interactions)
    assert not hasattr(proto, "n_items_")


def test_fit_with_explicit_valid(interactions: Interactions) -> None:
    fit_part, valid = split_validation(interactions, 0.2, seed=1)
    assert fit_part.nnz + valid.nnz == interactions.nnz
    assert np.all(fit_part.user_counts() >= 1)
    blend = WeightedBlend(models=MEMBERS).fit(fit_part, valid=valid)
    assert blend.members_[0].seen_.nnz == fit_part.nnz


def test_errors(interactions: Interactions, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        WeightedBlend(models=[]).fit(interactions)
    with pytest.raises(ConfigError):
        WeightedBlend(models=[{"nam": "SVD"}]).fit(interactions)
    with pytest.raises(ConfigError):
        WeightedBlend(models=MEMBERS, valid_fraction=1.5).fit(interactions)
    with pytest.raises(ConfigError):
        WeightedBlend(models=["BiasBaseline"]).fit_blend(interactions)
    with pytest.raises(NotFittedError):
        WeightedBlend(models=[BiasBaseline()]).fit_blend(interactions)
    with pytest.raises(DataError):
        WeightedBlend(models=MEMBERS).fit(interactions, valid=grid(np.array([0]), np.array([0]), np.array([3.0]), 2, 2))
    blend = WeightedBlend(models=MEMBERS).fit(interactions)
    blend.save(tmp_path / "b")
    assert isinstance(load_model(tmp_path / "b"), WeightedBlend)  # the generic loader dispatches to ensembles
    assert isinstance(load_ensemble(tmp_path / "b"), WeightedBlend)
    with pytest.raises(BundleError, match="not an ensemble"):
        blend.members_[0].save(tmp_path / "single")
        WeightedBlend.load(tmp_path / "single")


def test_declared_members_forget_the_user_and_fit_with_their_declared_inputs(tmp_path: Path) -> None:
    """Ensembles declare where their members live (``member_state``) and that ``fit`` takes ``valid``: forgetting a
    user reaches every member, so no saved member file keeps the user's row."""
    from fusionrec.models.declaration import undeclared_state

    decl = WeightedBlend.declaration()
    assert decl.member_state == "members_" and {"side", "valid"} <= decl.fit_inputs
    rng = np.random.default_rng(4)
    n_u, n_i = 61, 43
    u, i = np.nonzero(rng.random((n_u, n_i)) < 0.3)
    train = grid(u, i, rng.integers(1, 6, len(u)).astype(float), n_u, n_i)
    blend = WeightedBlend(models=MEMBERS, seed=0).fit(train)
    assert undeclared_state(blend) == [] and all(undeclared_state(m) == [] for m in blend.members_)
    before = blend.members_[0].user_bias_[3]
    assert before != 0
    blend.forget_user(3)
    assert all(3 in m.forgotten_users_ for m in blend.members_)
    blend.save(tmp_path / "b")
    member = load_model(tmp_path / "b" / "members" / "00")
    assert member.user_bias_[3] == 0 and member.seen_[3].nnz == 0
