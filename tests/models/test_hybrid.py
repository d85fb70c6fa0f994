"""HybridMF: contract, one kernel step against a numpy reference, fuse_modalities (mean imputation), profile-only users, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from fusionrec.data import Interactions
from fusionrec.data.side import fuse_modalities
from fusionrec.errors import ConfigError, DataError
from fusionrec.models import SideInfo, make_model
from fusionrec.models.hybrid import HybridMF, fold_in_vector

from .contract import RecommenderContract
from .test_bpr import assert_declared_and_forgotten, odd_interactions
from .test_coldstart import N_ITEMS, N_USERS, N_WARM, genre_data, genre_margin


def _side(train: Interactions) -> SideInfo:
    rng = np.random.default_rng(0)
    return SideInfo(
        item_features={
            "text": rng.normal(size=(train.n_items, 6)).astype(np.float32),
            "image": rng.random((train.n_items, 4)).astype(np.float32),
        }
    )


class TestHybridMFWarp(RecommenderContract):
    implicit = True
    fold_in_overlap = 0.3  # 3 epochs: the fitted user vectors are far from their per-user optimum

    def make_model(self) -> HybridMF:
        return HybridMF(n_factors=8, epochs=3, seed=2)

    def make_side(self, train: Interactions) -> SideInfo:
        return _side(train)


class TestHybridMFBprSgd(RecommenderContract):
    implicit = True

    def make_model(self) -> HybridMF:
        return HybridMF(n_factors=8, epochs=3, loss="bpr", learning_schedule="sgd", normalize="l1", seed=2)

    def make_side(self, train: Interactions) -> SideInfo:
        return _side(train)


def test_registry_name() -> None:
    assert isinstance(make_model("HybridMF"), HybridMF)


def _kernel_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    n_u, n_i, d_i, d_u, f = 3, 5, 4, 2, 3
    p = {
        "i_idw": rng.random(n_i).astype(np.float32),
        "I_ID": rng.normal(size=(n_i, f)).astype(np.float32),
        "I_IDb": rng.normal(size=n_i).astype(np.float32),
        "i_x": rng.random((n_i, d_i)).astype(np.float32) * (rng.random((n_i, d_i)) < 0.6),
        "I_E": rng.normal(size=(d_i, f)).astype(np.float32),
        "I_Eb": rng.normal(size=d_i).astype(np.float32),
        "u_idw": rng.random(n_u).astype(np.float32),
        "U_ID": rng.normal(size=(n_u, f)).astype(np.float32),
        "u_x": rng.random((n_u, d_u)).astype(np.float32),
        "U_E": rng.normal(size=(d_u, f)).astype(np.float32),
    }
    return p


@pytest.mark.parametrize("loss", ["bpr", "warp"])
def test_kernel_step_equals_numpy_gradient(loss: str) -> None:
    """One SGD step of the kernel equals the analytic gradient of the pairwise loss in numpy."""
    from fusionrec.models._kernels.hybrid import hybrid_epoch

    rng = np.random.default_rng(5)
    p = _kernel_params(rng)
    u, i, j = 1, 2, 4
    lr, ia, ua = 0.1, 0.01, 0.02
    ix, ux = sp.csr_matrix(p["i_x"]), sp.csr_matrix(p["u_x"])
    seen = sp.csr_matrix(([1.0], ([u], [i])), shape=(3, 5))
    # numpy reference (gradients at the old parameters)
    r_u = p["u_idw"][u] * p["U_ID"][u] + p["u_x"][u] @ p["U_E"]
    rep = lambda e: p["i_idw"][e] * p["I_ID"][e] + p["i_x"][e] @ p["I_E"]
    bias = lambda e: p["i_idw"][e] * p["I_IDb"][e] + p["i_x"][e] @ p["I_Eb"]
    d = r_u @ (rep(i) - rep(j)) + bias(i) - bias(j)
    if loss == "bpr":
        g = 1.0 / (1.0 + np.exp(d))
        negatives = np.array([j], dtype=np.int32)
    else:
        # three copies of j: the first draw violates the margin (forced below), weight ln floor(2 / 1)
        negatives = np.array([j, j, j], dtype=np.int32)
        p["I_IDb"][j] += 5.0 - d  # make s_uj > s_ui - 1
        d = r_u @ (rep(i) - rep(j)) + bias(i) - bias(j)
        g = np.log(2.0)
    exp = {k: v.astype(np.float64).copy() for k, v in p.items()}
    ri, rj = rep(i), rep(j)
    exp["I_ID"][i] -= lr * (-g * r_u * p["i_idw"][i] + ia * p["I_ID"][i])
    exp["I_ID"][j] -= lr * (g * r_u * p["i_idw"][j] + ia * p["I_ID"][j])
    exp["I_IDb"][i] -= lr * (-g * p["i_idw"][i] + ia * p["I_IDb"][i])
    exp["I_IDb"][j] -= lr * (g * p["i_idw"][j] + ia * p["I_IDb"][j])
    exp["U_ID"][u] -= lr * (-g * (ri - rj) * p["u_idw"][u] + ua * p["U_ID"][u])
    E, Eb = p["I_E"].astype(np.float64).copy(), p["I_Eb"].astype(np.float64).copy()
    for c in np.flatnonzero(p["i_x"][i]):  # sequential, as the kernel: i's features, then j's
        E[c] -= lr * (-g * r_u * p["i_x"][i, c] + ia * E[c])
    for c in np.flatnonzero(p["i_x"][i]):
        Eb[c] -= lr * (-g * p["i_x"][i, c] + ia * Eb[c])
    for c in np.flatnonzero(p["i_x"][j]):
        E[c] -= lr * (g * r_u * p["i_x"][j, c] + ia * E[c])
    for c in np.flatnonzero(p["i_x"][j]):
        Eb[c] -= lr * (g * p["i_x"][j, c] + ia * Eb[c])
    UE = p["U_E"].astype(np.float64).copy()
    for c in np.flatnonzero(p["u_x"][u]):
        UE[c] -= lr * (-g * (ri - rj) * p["u_x"][u, c] + ua * UE[c])
    ones = [np.ones_like(p[k]) for k in ("I_ID", "I_IDb", "I_E", "I_Eb", "U_ID", "U_E")]
    hybrid_epoch(
        np.array([u], np.int32), np.array([i], np.int32), seen.indptr, seen.indices, negatives,
        p["i_idw"], p["I_ID"], p["I_IDb"], ix.indptr, ix.indices, ix.data, p["I_E"], p["I_Eb"], *ones[:4],
        p["u_idw"], p["U_ID"], ux.indptr, ux.indices, ux.data, p["U_E"], *ones[4:],
        loss == "warp", 3, lr, ia, ua, False, 0,
    )  # fmt: skip
    for key in ("I_ID", "I_IDb", "U_ID"):
        np.testing.assert_allclose(p[key], exp[key], rtol=1e-4, atol=1e-5, err_msg=key)
    np.testing.assert_allclose(p["I_E"], E, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(p["I_Eb"], Eb, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(p["U_E"], UE, rtol=1e-4, atol=1e-5)


def test_fuse_modalities_imputes_normalises_and_weights() -> None:
    a = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]], np.float32)
    b = np.array([[1.0], [2.0], [0.0]], np.float32)
    x, dims, means = fuse_modalities(
        {"a": a, "b": b}, ["a", "b"], modality_weights={"a": 4.0}, impute="mean",
        present={"b": np.array([True, True, False])},
    )  # fmt: skip
    np.testing.assert_array_equal(dims, [2, 1])
    np.testing.assert_allclose(means, [2.0, 2.0, 1.5])  # a: mean of rows 0 and 2 (row 1 is all zero = absent)
    np.testing.assert_allclose(x[0], [2 * 0.6, 2 * 0.8, 1.0], atol=1e-6)
    np.testing.assert_allclose(x[1, :2], 2 * np.array([1.0, 1.0]) / np.sqrt(2), atol=1e-6)  # imputed mean row
    np.testing.assert_allclose(x[2, 2], 1.0)  # b absent for row 2: mean 1.5 normalised
    xz, _, _ = fuse_modalities({"a": a}, ["a"], impute="zero")
    np.testing.assert_allclose(xz[1], 0.0)


def test_identity_only_is_pure_collaborative_and_cold_items_are_zero() -> None:
    train, _ = genre_data()
    model = HybridMF(n_factors=8, epochs=5, seed=0).fit(train)
    assert model.item_x_.shape == (N_ITEMS, 0)
    r, b = model.item_representations()
    np.testing.assert_array_equal(r[N_WARM:], 0.0)
    np.testing.assert_array_equal(b[N_WARM:], 0.0)


def test_profile_only_user_from_user_features() -> None:
    train, side = genre_data()
    model = HybridMF(n_factors=8, epochs=30, lr=0.1, user_features=["pref"], seed=1).fit(train, side)
    users = []
    for g in (0, 1):
        users.append(int(model.fold_in_user([], user_features={"pref": np.eye(2, dtype=np.float32)[g]})[0]))
    assert users == [N_USERS, N_USERS + 1]
    np.testing.assert_array_equal(model.user_identity_[users], 0.0)
    cold = np.arange(N_WARM, N_ITEMS)
    # genre_margin takes "liked genre = u % 2": users N_USERS (even) likes 0, N_USERS + 1 likes 1
    assert genre_margin(model.score(users, cold), np.array(users), cold) > 0.05
    warm = np.arange(N_WARM)
    assert genre_margin(model.score(users, warm), np.array(users), warm) > 0.05


def test_fold_in_vector_prefers_positives() -> None:
    rng = np.random.default_rng(0)
    V = rng.normal(size=(50, 4))
    pos = np.array([1, 5, 9])
    v = fold_in_vector(V, np.zeros(50), pos, reg=0.01)
    s = V @ v
    assert s[pos].min() > np.median(np.delete(s, pos))
    np.testing.assert_array_equal(fold_in_vector(V, np.zeros(50), np.array([], np.int64)), 0.0)


def test_errors() -> None:
    train, side = genre_data()
    for bad in ({"loss": "hinge"}, {"n_factors": 0}, {"lr": 0.0}, {"normalize": "max"}, {"impute": "x"}):
        with pytest.raises(ConfigError):
            HybridMF(**bad).fit(train, side)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        HybridMF(item_features=["text"]).fit(train)
    with pytest.raises(ConfigError):
        HybridMF(item_identity=False).fit(train)
    with pytest.raises(DataError):
        HybridMF(item_features=["audio"]).fit(train, side)
    model = HybridMF(epochs=1, item_features=[]).fit(train, side)
    with pytest.raises(ConfigError):
        model.add_items({"text": np.zeros((1, 6))})
    with pytest.raises(ConfigError):
        HybridMF(epochs=1, user_features=[]).fit(train, side).fold_in_user([], user_features={"pref": np.eye(2)[0]})


def test_declared_state_and_forget(tmp_path: Path) -> None:
    """Identity weights and embeddings, item biases and the normalised feature rows are declared; forget_user blanks
    the user's identity embedding and profile row (fails when HybridMF's user_state / item_state is removed)."""
    train = odd_interactions()
    rng = np.random.default_rng(0)
    side = _side(train)
    side = SideInfo(item_features=side.item_features, user_features={"profile": rng.random((train.n_users, 5))})
    model = HybridMF(n_factors=6, epochs=2, seed=0).fit(train, side)
    assert model.user_x_[5].nnz  # the profile row is there to forget
    assert_declared_and_forgotten(model, tmp_path)


def test_former_parameter_names_still_work() -> None:
    """``learning_rate`` -> ``lr``, ``item_alpha`` -> ``reg_item``, ``user_alpha`` -> ``reg_user``."""
    with pytest.warns(FutureWarning, match="was renamed"):
        model = HybridMF(learning_rate=0.1, item_alpha=1e-4, user_alpha=1e-5)
    assert (model.lr, model.reg_item, model.reg_user) == (0.1, 1e-4, 1e-5)
    assert HybridMF.upgrade_params({"item_alpha": 0.0}) == {"reg_item": 0.0}
