"""VBPR: contract, one kernel step against the analytic gradient, content-only cold items, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import Interactions
from fusionrec.errors import ConfigError, DataError
from fusionrec.models import SideInfo, make_model
from fusionrec.models.vbpr import VBPR, sample_negatives

from .contract import RecommenderContract
from .test_bpr import assert_declared_and_forgotten, odd_interactions
from .test_coldstart import N_ITEMS, N_WARM, genre_data


class TestVBPR(RecommenderContract):
    implicit = True

    def make_model(self) -> VBPR:
        return VBPR(n_factors=4, content_factors=3, epochs=3, seed=2)

    def make_side(self, train: Interactions) -> SideInfo:
        rng = np.random.default_rng(0)
        return SideInfo(
            item_features={
                "text": rng.normal(size=(train.n_items, 6)).astype(np.float32),
                "image": rng.random((train.n_items, 4)).astype(np.float32),
            }
        )


def test_registry_name() -> None:
    assert isinstance(make_model("VBPR"), VBPR)


def test_kernel_step_equals_analytic_gradient() -> None:
    from fusionrec.models._kernels.vbpr import vbpr_epoch

    rng = np.random.default_rng(3)
    k1, k2, nf = 3, 2, 4
    Gu, Gi = rng.normal(size=(2, k1)).astype(np.float32), rng.normal(size=(5, k1)).astype(np.float32)
    b, T = rng.normal(size=5).astype(np.float32), rng.normal(size=(2, k2)).astype(np.float32)
    E, beta = rng.normal(size=(k2, nf)).astype(np.float32), rng.normal(size=nf).astype(np.float32)
    F = rng.normal(size=(5, nf)).astype(np.float32)
    u, i, j, lr, reg, reg_b, reg_e = 1, 0, 3, 0.1, 0.01, 0.02, 0.03
    d = F[i] - F[j]
    x = b[i] - b[j] + Gu[u] @ (Gi[i] - Gi[j]) + T[u] @ (E @ d) + beta @ d
    z = 1.0 / (1.0 + np.exp(x))
    exp = {
        "Gu": Gu[u] + lr * (z * (Gi[i] - Gi[j]) - reg * Gu[u]),
        "Gi_i": Gi[i] + lr * (z * Gu[u] - reg * Gi[i]),
        "Gi_j": Gi[j] + lr * (-z * Gu[u] - reg * Gi[j]),
        "b_i": b[i] + lr * (z - reg_b * b[i]),
        "b_j": b[j] + lr * (-z - reg_b * b[j]),
        "T": T[u] + lr * (z * (E @ d) - reg * T[u]),
        "E": E + lr * (z * np.outer(T[u], d) - reg_e * E),
        "beta": beta + lr * (z * d - reg_e * beta),
    }
    loglik = vbpr_epoch(
        Gu, Gi, b, T, E, beta, F, np.array([u], np.int32), np.array([i], np.int32), np.array([j], np.int32),
        lr, reg, reg_b, reg_e,
    )  # fmt: skip
    assert loglik == pytest.approx(-np.log1p(np.exp(-x)), rel=1e-4)
    got = {"Gu": Gu[u], "Gi_i": Gi[i], "Gi_j": Gi[j], "b_i": b[i], "b_j": b[j], "T": T[u], "E": E, "beta": beta}
    for key, value in exp.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-4, atol=1e-5, err_msg=key)


def test_adagrad_step_scales_each_coordinate() -> None:
    """Adagrad kernel: one step moves every touched coordinate by lr * g / sqrt(g^2) = lr * sign(g) (first step)."""
    from fusionrec.models._kernels.vbpr import vbpr_epoch

    rng = np.random.default_rng(4)
    k1, k2, nf = 3, 2, 4
    arrays = [
        rng.normal(size=(2, k1)), rng.normal(size=(5, k1)), rng.normal(size=5), rng.normal(size=(2, k2)),
        rng.normal(size=(k2, nf)), rng.normal(size=nf),
    ]  # fmt: skip
    Gu, Gi, b, T, E, beta = (a.astype(np.float32) for a in arrays)
    F = rng.normal(size=(5, nf)).astype(np.float32)
    before = [a.copy() for a in (Gu, Gi, b, T, E, beta)]
    acc = [np.zeros_like(a) for a in (Gu, Gi, b, T, E, beta)]
    u, i, j, lr = 1, 0, 3, 0.1
    vbpr_epoch(
        Gu, Gi, b, T, E, beta, F, np.array([u], np.int32), np.array([i], np.int32), np.array([j], np.int32),
        lr, 0.0, 0.0, 0.0, True, *acc,
    )  # fmt: skip
    for name, new, old in zip(("Gu", "Gi", "b", "T", "E", "beta"), (Gu, Gi, b, T, E, beta), before):
        moved = np.abs(new - old)
        np.testing.assert_allclose(moved[moved > 0], lr, rtol=1e-3, err_msg=name)
    assert np.abs(Gu - before[0])[u].min() > 0 and np.abs(b - before[2])[[i, j]].min() > 0


def test_default_adagrad_learns_and_reports_coverage() -> None:
    train, side = genre_data()
    model = VBPR(n_factors=4, content_factors=4, epochs=10, seed=0).fit(train, side)
    assert model.optimizer == "adagrad" and 0.0 < model.coverage_ <= 1.0
    assert model.loss_history_[-1] < model.loss_history_[0]
    sgd = VBPR(n_factors=4, content_factors=4, epochs=2, seed=0, optimizer="sgd").fit(train, side)
    assert not np.allclose(sgd.item_factors_, model.item_factors_)
    with pytest.raises(ConfigError):
        VBPR(optimizer="adam").fit(train, side)


def test_cold_items_have_content_scores_only() -> None:
    train, side = genre_data()
    model = VBPR(n_factors=4, content_factors=4, epochs=5, seed=0).fit(train, side)
    np.testing.assert_array_equal(model.item_factors_[N_WARM:], 0.0)
    np.testing.assert_array_equal(model.item_bias_[N_WARM:], 0.0)
    s = model.score(np.arange(3), np.arange(N_WARM, N_ITEMS))
    content = model.item_content_[N_WARM:]
    expected = model.user_content_factors_[:3] @ (content @ model.projection_.T).T + content @ model.content_bias_
    np.testing.assert_allclose(s, expected, rtol=1e-5, atol=1e-6)


def test_one_modality_and_weights() -> None:
    train, side = genre_data()
    model = VBPR(epochs=2, modalities=["image"], modality_weights={"image": 4.0}).fit(train, side)
    assert model.item_content_.shape == (N_ITEMS, 4)
    np.testing.assert_allclose(np.linalg.norm(model.item_content_, axis=1), 2.0, rtol=1e-5)


def test_sample_negatives_avoids_positives() -> None:
    keys = np.sort(np.array([0 * 5 + 1, 0 * 5 + 2, 1 * 5 + 0]))
    neg = sample_negatives(np.array([0] * 50 + [1] * 50), keys, 5, np.arange(5), np.random.default_rng(0))
    assert not np.isin(neg[:50], [1, 2]).any() and not (neg[50:] == 0).any()


def test_errors() -> None:
    train, side = genre_data()
    with pytest.raises(ConfigError):
        VBPR().fit(train)
    for bad in ({"n_factors": 0}, {"content_factors": 1.5}, {"lr": -1.0}, {"reg": -1.0}):
        with pytest.raises(ConfigError):
            VBPR(**bad).fit(train, side)  # type: ignore[arg-type]
    with pytest.raises(DataError):
        VBPR(modalities=["audio"]).fit(train, side)
    model = VBPR(epochs=1).fit(train, side)
    with pytest.raises(ConfigError):
        model.fold_in_user([], user_features={"pref": np.eye(2)[0]})
    idx = model.fold_in_user([])  # no history: non-personalised b_i + beta . f_i
    np.testing.assert_array_equal(model.user_factors_[idx], 0.0)


def test_declared_state_and_forget(tmp_path: Path) -> None:
    """gamma_u and theta_u per user, gamma_i, b_i and the content row per item are declared (the projection and the
    content bias are per content column); forget_user blanks both user vectors."""
    train = odd_interactions()
    model = TestVBPR().make_model().fit(train, TestVBPR().make_side(train))
    assert_declared_and_forgotten(model, tmp_path)


def test_former_parameter_names_still_work() -> None:
    """``learning_rate`` -> ``lr`` and the three regularisations -> ``reg``, ``reg_bias``, ``reg_content``."""
    with pytest.warns(FutureWarning, match="was renamed"):
        model = VBPR(learning_rate=0.1, regularization=0.01, bias_regularization=0.02, content_regularization=0.03)
    assert (model.lr, model.reg, model.reg_bias, model.reg_content) == (0.1, 0.01, 0.02, 0.03)
