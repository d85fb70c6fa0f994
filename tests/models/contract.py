"""Contract tests that every Recommender passes: inherit and define ``make_model``.

Example::

    class TestMostPopular(RecommenderContract):
        def make_model(self):
            return MostPopular()
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import Interactions
from fusionrec.errors import ConfigError, NotFittedError
from fusionrec.models import Recommender, SideInfo, load_model
from fusionrec.models.coldstart import UserColdStart
from fusionrec.models.factors import FactorModel

from ..conftest import make_interactions


class RecommenderContract:
    #: set False for models with no randomness or no seed parameter
    seeded: bool = True
    #: implicit models are fitted on binarised data
    implicit: bool = False
    #: smallest top-10 overlap between a user and a folded-in copy of their history (0 for random scores)
    fold_in_overlap: float = 0.5

    def make_model(self) -> Recommender:  # pragma: no cover - overridden
        raise NotImplementedError

    def make_side(self, train: Interactions) -> SideInfo | None:
        """Side information for models that need it (override)."""
        return None

    @pytest.fixture
    def train(self) -> Interactions:
        return make_interactions(seed=3, explicit=not self.implicit)

    def _fit(self, train: Interactions) -> Recommender:
        return self.make_model().fit(train, self.make_side(train))

    def test_fit_returns_self_and_sets_state(self, train: Interactions) -> None:
        model = self.make_model()
        assert model.fit(train, self.make_side(train)) is model
        assert model.n_items_ == train.n_items and model.n_users_ == train.n_users

    def test_fitted_state_is_declared(self, train: Interactions) -> None:
        """This configuration's per-user / per-item arrays are declared (the registry-wide suite,
        ``test_declaration.py``, checks each model's recipes on data sized apart from everything else)."""
        from fusionrec.models.declaration import undeclared_state

        model = self._fit(train)
        assert not undeclared_state(model), f"undeclared per-user / per-item state: {undeclared_state(model)}"

    def test_unfitted_raises(self) -> None:
        with pytest.raises(NotFittedError):
            self.make_model().recommend([0], k=3)

    def test_params_roundtrip(self) -> None:
        model = self.make_model()
        clone = model.clone()
        assert clone.get_params() == model.get_params()
        assert type(clone) is type(model)

    def test_score_shape_and_finite(self, train: Interactions) -> None:
        model = self._fit(train)
        s = model.score(np.array([0, 1, 2]))
        assert s.shape == (3, train.n_items)
        assert np.isfinite(s).all()
        sub = model.score(np.array([0, 1]), np.array([4, 2, 7]))
        np.testing.assert_allclose(sub, s[:2][:, [4, 2, 7]], rtol=1e-5, atol=1e-5)

    def test_predict_matches_score(self, train: Interactions) -> None:
        model = self._fit(train)
        users = np.array([0, 5, 5, 2])
        items = np.array([1, 3, 0, 7])
        s = model.score(users)
        np.testing.assert_allclose(model.predict(users, items), s[np.arange(4), items], rtol=1e-5, atol=1e-5)

    def test_recommend_excludes_seen(self, train: Interactions) -> None:
        model = self._fit(train)
        users = np.arange(min(10, train.n_users))
        items, scores = model.recommend(users, k=5)
        assert items.shape == (len(users), 5)
        for j, u in enumerate(users):
            seen = set(train.matrix[u].indices.tolist())
            assert not seen & set(items[j][items[j] >= 0].tolist())
            row = scores[j][np.isfinite(scores[j])]
            assert np.all(np.diff(row) <= 1e-6)

    def test_recommend_candidates(self, train: Interactions) -> None:
        model = self._fit(train)
        cand = np.array([1, 3, 5, 7, 9, 11])
        items, _ = model.recommend(np.array([0, 1]), k=3, candidates=cand, exclude_seen=False)
        assert set(items.ravel().tolist()) <= set(cand.tolist())

    def test_seed_reproducible(self, train: Interactions) -> None:
        if not self.seeded:
            pytest.skip("model has no randomness")
        a = self._fit(train).score(np.arange(5))
        b = self._fit(train).score(np.arange(5))
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    def test_save_load_roundtrip(self, train: Interactions, tmp_path: Path) -> None:
        model = self._fit(train)
        model.save(tmp_path / "m")
        loaded = load_model(tmp_path / "m")
        assert type(loaded) is type(model)
        assert loaded.get_params() == model.get_params()
        np.testing.assert_allclose(loaded.score(np.arange(5)), model.score(np.arange(5)), rtol=1e-5, atol=1e-6)
        a, _ = loaded.recommend(np.arange(5), k=5)
        b, _ = model.recommend(np.arange(5), k=5)
        np.testing.assert_array_equal(a, b)

    # ------------------------------------------------------------------ factor and cold-start contracts
    def test_factors_reproduce_scores(self, train: Interactions) -> None:
        model = self._fit(train)
        if not isinstance(model, FactorModel):
            pytest.skip("not a factor model")
        f = model.factors()
        users = np.arange(min(12, train.n_users))
        expected = f.scores(users)
        if model.predicts_ratings and hasattr(model, "rating_min_") and getattr(model, "clip", True):
            learned = vars(model)
            expected = np.clip(expected, learned["rating_min_"], learned["rating_max_"])
        np.testing.assert_allclose(model.score(users), expected, rtol=1e-4, atol=1e-4)
        U, V = f.augmented()
        assert U.dtype == np.float32 and V.dtype == np.float32 and U.shape[1] == V.shape[1]
        np.testing.assert_allclose(U[users] @ V.T, f.scores(users), rtol=1e-4, atol=1e-4)

    def test_add_item_vectors_scores_like_the_copied_item(self, train: Interactions) -> None:
        model = self._fit(train)
        if not isinstance(model, FactorModel):
            pytest.skip("not a factor model")
        f = model.factors()
        i = 3
        bias = None if f.item_bias is None else np.asarray(f.item_bias)[[i]].copy()
        new = model.add_item_vectors(np.asarray(f.item)[[i]].copy(), bias)
        assert new.dtype == np.int64 and new.tolist() == [train.n_items]
        assert model.n_items_ == train.n_items + 1 and model.seen_.shape[1] == train.n_items + 1
        s = model.score(np.arange(min(12, train.n_users)))
        assert s.shape[1] == train.n_items + 1
        np.testing.assert_allclose(s[:, -1], s[:, i], rtol=1e-4, atol=1e-4)

    def test_folded_in_copy_of_a_user_ranks_like_them(self, train: Interactions) -> None:
        model = self._fit(train)
        if not isinstance(model, UserColdStart):
            pytest.skip("no user cold start")
        counts = np.diff(train.matrix.indptr)
        u = int(np.argmax(counts[:20]))
        row = train.matrix[u]
        try:
            placed = model.fold_in_user(row.indices, row.data)
        except ConfigError:
            pytest.skip("this configuration refuses fold-in")
        assert placed.dtype == np.int64 and placed.tolist() == [train.n_users]
        assert model.n_users_ == train.n_users + 1
        items, _ = model.recommend(np.array([u, placed[0]]), k=10)
        overlap = len(set(items[0].tolist()) & set(items[1].tolist())) / 10
        assert overlap >= self.fold_in_overlap, overlap
        # re-placing an existing user keeps the index and the count
        assert model.fold_in_user(row.indices, row.data, user=0).tolist() == [0]
        assert model.n_users_ == train.n_users + 1
