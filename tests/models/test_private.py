"""Differentially private training (fusionrec.models.private): DPMF and DeepFusion(private=True).

Checked: the model contract; the spent epsilon is reported and within the target; more noise gives lower accuracy
on a planted dataset while epsilon = 8 stays well above random; clipping is applied (per-record gradients equal
Opacus's GradSampleModule ones and are clipped to max_grad_norm); impossible settings raise typed errors.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("opacus", reason="private training needs opacus (pip install 'fusionrec[privacy]')")
torch = pytest.importorskip("torch")

from fusionrec.data import Interactions  # noqa: E402
from fusionrec.errors import ConfigError  # noqa: E402
from fusionrec.evaluation import evaluate_ranking  # noqa: E402
from fusionrec.models import SideInfo, load_model, make_model  # noqa: E402
from fusionrec.models.baselines import Random  # noqa: E402
from fusionrec.models.fusion.model import DeepFusion, FusionNet, FusionNetConfig  # noqa: E402
from fusionrec.models.private import DPMF, DPSGD, _bpr_record_grads, fusion_record_grads  # noqa: E402

from .contract import RecommenderContract  # noqa: E402
from .test_bpr import assert_declared_and_forgotten, odd_interactions  # noqa: E402
from .test_federated import planted  # noqa: E402


def ndcg(model, train, test) -> float:
    return float(evaluate_ranking(model, train, test, k=[10]).metrics["NDCG@10"])


class TestDPMFContract(RecommenderContract):
    implicit = True
    fold_in_overlap = 0.3

    def make_model(self) -> DPMF:
        return DPMF(n_factors=4, epochs=4, batch_size=32, lr=0.05, target_epsilon=8.0, seed=1)


class TestPrivateDeepFusionContract(RecommenderContract):
    implicit = True

    def make_model(self) -> DeepFusion:
        return DeepFusion(n_factors=4, hidden=8, epochs=2, batch_size=32, private=True, target_epsilon=8.0, seed=1)

    def make_side(self, train: Interactions) -> SideInfo:
        rng = np.random.default_rng(0)
        return SideInfo(item_features={"genre": rng.random((train.n_items, 5)).astype(np.float32)})


# ---------------------------------------------------------------------- epsilon
@pytest.mark.parametrize("eps", [1.0, 3.0])
def test_epsilon_reported_and_within_target(eps: float) -> None:
    train, _ = planted(users_per=20)
    m = DPMF(n_factors=4, epochs=3, batch_size=64, target_epsilon=eps).fit(train)
    spent, delta = m.privacy_spent_
    assert 0.9 * eps <= spent <= eps * 1.001
    assert delta == pytest.approx(0.1 / train.nnz)  # the default delta, below 1/n
    assert m.noise_multiplier_ > 0.5
    # the budget survives save / load
    m2 = DeepFusion(n_factors=4, hidden=8, epochs=1, batch_size=64, private=True, target_epsilon=eps, delta=1e-5)
    m2.fit(train, SideInfo(item_features={"g": np.eye(train.n_items, 6, dtype=np.float32) + 0.1}))
    assert m2.privacy_spent_[0] <= eps * 1.001 and m2.privacy_spent_[1] == 1e-5


def test_more_epochs_spend_more_and_non_private_reports_infinity(tmp_path: Path) -> None:
    train, _ = planted(users_per=20)
    a = DPMF(n_factors=4, epochs=2, batch_size=64, target_epsilon=None, noise_multiplier=1.0).fit(train)
    b = DPMF(n_factors=4, epochs=6, batch_size=64, target_epsilon=None, noise_multiplier=1.0).fit(train)
    assert 0 < a.privacy_spent_[0] < b.privacy_spent_[0]
    a.save(tmp_path / "a")
    assert load_model(tmp_path / "a").privacy_spent_ == a.privacy_spent_
    plain = DPMF(n_factors=4, epochs=1, batch_size=64, private=False).fit(train)
    assert plain.privacy_spent_ == (math.inf, 0.0)
    assert DeepFusion(n_factors=4, epochs=1).privacy_spent_ == (math.inf, 0.0)


# ---------------------------------------------------------------------- accuracy against noise
def test_more_noise_lowers_accuracy_but_eps8_beats_random() -> None:
    train, test = planted()
    kw = dict(n_factors=8, epochs=15, batch_size=128, lr=0.05, seed=0)
    clean = ndcg(DPMF(private=False, **kw).fit(train), train, test)
    eps8 = ndcg(DPMF(target_epsilon=8.0, **kw).fit(train), train, test)
    loud = ndcg(DPMF(target_epsilon=None, noise_multiplier=30.0, **kw).fit(train), train, test)
    rand = ndcg(Random(seed=0).fit(train), train, test)
    assert clean > eps8 > loud, (clean, eps8, loud)
    assert eps8 > 1.8 * rand, (eps8, rand)
    assert clean > 0.5


# ---------------------------------------------------------------------- clipping
@pytest.mark.filterwarnings("ignore:Full backward hook:UserWarning")  # Opacus's hooks on an index-only input
def test_dpmf_record_gradients_equal_opacus_grad_samples() -> None:
    from opacus import GradSampleModule
    from torch import nn

    rng = np.random.default_rng(0)
    n_users, n_items, f, B = 5, 7, 3, 6
    U = torch.tensor(rng.normal(size=(n_users, f)), dtype=torch.float32)
    V = torch.tensor(rng.normal(size=(n_items, f)), dtype=torch.float32)
    b = torch.tensor(rng.normal(size=(n_items, 1)), dtype=torch.float32)
    u = torch.tensor(rng.integers(0, n_users, B))
    i = torch.tensor(rng.integers(0, n_items, B))
    j = torch.tensor(rng.integers(0, n_items, B))
    j[0] = i[0]  # a record whose negative is its positive: rows merge before the norm

    class MF(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.U = nn.Embedding(n_users, f, _weight=U.clone())
            self.V = nn.Embedding(n_items, f, _weight=V.clone())
            self.b = nn.Embedding(n_items, 1, _weight=b.clone())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            ij = x[:, 1:]
            v, bb = self.V(ij), self.b(ij)[..., 0]
            s = (self.U(x[:, 0]) * (v[:, 0] - v[:, 1])).sum(1) + bb[:, 0] - bb[:, 1]
            return torch.nn.functional.softplus(-s)

    gsm = GradSampleModule(MF(), loss_reduction="sum")
    gsm(torch.stack([u, i, j], dim=1)).sum().backward()
    expected = {k: p.grad_sample for k, p in gsm._module.named_parameters()}

    g_u, g_i, g_j, g_b = _bpr_record_grads(U[u], V[i], V[j], b[i, 0], b[j, 0])
    ij = torch.stack([i, j], dim=1)
    dense_u = torch.zeros(B, n_users, f).index_put_((torch.arange(B), u), g_u, accumulate=True)
    dense_v = torch.zeros(B, n_items, f)
    dense_v.index_put_((torch.arange(B), i), g_i, accumulate=True)
    dense_v.index_put_((torch.arange(B), j), g_j, accumulate=True)
    torch.testing.assert_close(dense_u, expected["U.weight"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(dense_v, expected["V.weight"], rtol=1e-5, atol=1e-6)

    # DPSGD's norms (rows merged) equal the norms of Opacus's dense per-sample gradients, and clipping holds
    dp = DPSGD(n_records=B, batch_size=B, steps=1, private=True, max_grad_norm=0.05, noise_multiplier=0.0)
    norms = dp.add(
        {},
        {
            "U": (g_u[:, None, :], u[:, None]),
            "V": (torch.stack([g_i, g_j], dim=1), ij),
            "b": (g_b[:, :, None], ij),
        },
    )
    opacus_norms = torch.sqrt(sum(g.reshape(B, -1).pow(2).sum(1) for g in expected.values()))
    torch.testing.assert_close(norms, opacus_norms, rtol=1e-4, atol=1e-6)
    assert norms[0] < 1e-6  # i == j: the record's gradient is exactly zero
    grads = dp.noisy_gradients({"U": U, "V": V, "b": b}, torch.Generator().manual_seed(0))
    clipped = {
        k: (expected[f"{k}.weight"] * torch.clamp(0.05 / (opacus_norms + 1e-6), max=1.0)[:, None, None]).sum(0) / B
        for k in ("U", "V", "b")
    }
    for k in ("U", "V", "b"):
        torch.testing.assert_close(grads[k], clipped[k], rtol=1e-4, atol=1e-6)
    assert dp.clipped_fraction == [pytest.approx(float((opacus_norms > 0.05).float().mean()))]


def test_clipping_is_applied_in_a_fit() -> None:
    train, _ = planted(users_per=20)
    kw = dict(n_factors=4, epochs=2, batch_size=64, target_epsilon=None, noise_multiplier=0.0, seed=0)
    tight = DPMF(max_grad_norm=1e-4, **kw).fit(train)
    loose = DPMF(max_grad_norm=100.0, **kw).fit(train)
    assert tight.clipped_fraction_.mean() > 0.9 and loose.clipped_fraction_.mean() == 0.0
    # Adam normalises the step size, but tightly clipped gradients weigh every record equally: other factors
    assert not np.allclose(tight.item_factors_, loose.item_factors_, atol=1e-4)


def test_deepfusion_record_gradients_equal_single_record_autograd() -> None:
    torch.manual_seed(0)
    cfg = FusionNetConfig(n_users=6, n_items=9, dim=4, dense=(("g", 5),), fusion="attention", hidden=8)
    net = FusionNet(cfg)
    for p in net.parameters():  # non-zero biases and queries so that every weight gets a gradient
        torch.nn.init.normal_(p, std=0.3)
    rng = np.random.default_rng(1)
    feats = torch.tensor(rng.random((9, 5)), dtype=torch.float32)
    mask_all = torch.ones(9, 2)
    users = torch.tensor([0, 3, 3, 5])
    items = torch.tensor([[1, 2], [4, 4], [0, 8], [7, 1]])  # record 1: negative == positive
    y = torch.zeros(4, 2)
    shared, rows = fusion_record_grads(net, "bpr", users, items, {"g": feats[items]}, None, mask_all[items], y)
    names = dict(net.named_parameters())
    for rec in range(4):
        net.zero_grad()
        it = items[rec]
        vec, bias = net.item_vectors(it, {"g": feats[it]}, None, mask_all[it])
        s = net(users[rec].repeat(2), vec, bias)
        (-torch.nn.functional.logsigmoid(s[0] - s[1])).backward()
        for k, (g, idx) in rows.items():
            dense = torch.zeros_like(names[k]).index_add_(0, idx[rec], g[rec])
            torch.testing.assert_close(dense, names[k].grad, rtol=1e-4, atol=1e-6)
        for k, g in shared.items():
            torch.testing.assert_close(g[rec], names[k].grad, rtol=1e-4, atol=1e-6)
    assert "towers.g.net.0.weight" in shared and "item_emb.weight" in rows


# ---------------------------------------------------------------------- typed errors and the CLI path
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"target_epsilon": 0.0}, "target_epsilon"),
        ({"target_epsilon": -1.0}, "target_epsilon"),
        ({"delta": 1.5}, "delta"),
        ({"max_grad_norm": 0.0}, "max_grad_norm"),
        ({"accountant": "moments"}, "accountant"),
    ],
)
def test_impossible_settings_are_refused_at_construction(params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_model("DPMF", **params)
    with pytest.raises(ConfigError, match=message):
        make_model("DeepFusion", private=True, **params)


def test_impossible_settings_are_refused_at_fit() -> None:
    big, _ = planted(users_per=40)
    # delta is declared <= 1e-3; on a log of n >= 1000 records the fit also refuses delta >= 1/n
    assert big.nnz >= 1000
    with pytest.raises(ConfigError, match=r"delta=.* must be in \(0, 1/n\)"):
        DPMF(batch_size=16, epochs=1, delta=1e-3).fit(big)
    train, _ = planted(users_per=5)
    n = train.nnz
    with pytest.raises(ConfigError, match=r"target_epsilon .* or a fixed noise_multiplier"):
        DPMF(batch_size=16, target_epsilon=None).fit(train)
    whole = DPMF(batch_size=10 * n, epochs=1).fit(train)  # a batch above n is all of them: sampling rate 1
    assert whole.privacy_spent_[0] <= whole.target_epsilon + 1e-6
    with pytest.raises(ConfigError, match="target_epsilon"):
        DeepFusion(private=True, batch_size=16).fit(train, SideInfo(item_features={"g": np.ones((train.n_items, 2))}))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # click 8.2 deprecations raised while typer imports
def test_train_bundle_trains_dpmf_and_keeps_the_budget(tmp_path: Path) -> None:
    from fusionrec.serving.bundle import load_bundle
    from fusionrec.serving.cli import train_bundle

    train, _ = planted(users_per=10)
    log = tmp_path / "log.csv"
    rows = train.to_frame() if hasattr(train, "to_frame") else None
    if rows is None:
        m = train.matrix.tocoo()
        import pandas as pd

        rows = pd.DataFrame({"user": train.user_ids.ids[m.row], "item": train.item_ids.ids[m.col]})
    rows.to_csv(log, index=False)
    path = train_bundle(
        None,
        "DPMF",
        tmp_path / "bundle",
        params={"target_epsilon": 3, "epochs": 2, "batch_size": 32, "n_factors": 4},
        files={"interactions": log},
    )
    model = load_bundle(path).model
    assert isinstance(model, DPMF)
    assert 2.5 < model.privacy_spent_[0] <= 3.001


@pytest.mark.parametrize("tower", ["cnn", "lstm"])
def test_private_deepfusion_with_a_text_tower(tower: str) -> None:
    train, _ = planted(users_per=5)
    texts = [f"word{i % 4} shared text {i}" for i in range(train.n_items)]
    m = DeepFusion(n_factors=4, epochs=1, batch_size=32, private=True, target_epsilon=5.0, text_tower=tower, fusion="late")
    m.fit(train, None, texts=texts)
    assert 4.5 < m.privacy_spent_[0] <= 5.001
    assert np.isfinite(m.score(np.arange(3))).all()


def test_declared_state_and_forget(tmp_path: Path) -> None:
    """The factors are DPMF's only per-user / per-item state (the privacy figures are scalars and a per-step
    history)."""
    model = DPMF(n_factors=6, epochs=2, private=False, seed=0).fit(odd_interactions())
    assert_declared_and_forgotten(model, tmp_path)


def test_former_parameter_names_still_work() -> None:
    """DPMF's ``learning_rate`` -> ``lr`` and ``regularization`` -> ``reg``, with a FutureWarning."""
    with pytest.warns(FutureWarning, match="was renamed"):
        model = DPMF(learning_rate=0.1, regularization=0.01)
    assert (model.lr, model.reg) == (0.1, 0.01)
