"""DeepFusion: the contract, every fusion mode and loss learns the planted signal, cold items, masking, persistence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import Interactions, Split
from fusionrec.errors import ConfigError, DataError
from fusionrec.models import SideInfo, load_model, make_model
from fusionrec.models.declaration import undeclared_state
from fusionrec.models.registry import MODELS, available_models, get_model_class, registered_name

from .contract import RecommenderContract

torch = pytest.importorskip("torch")

from fusionrec.models.fusion import (  # noqa: E402
    FUSIONS,
    DeepFusion,
    FusionNet,
    FusionNetConfig,
    TextTower,
    TextTowerConfig,
    hash_tokenize,
)

NAME, PATH = "DeepFusion", "fusionrec.models.fusion.model:DeepFusion"


def _side(n_items: int, seed: int = 0) -> SideInfo:
    rng = np.random.default_rng(seed)
    return SideInfo(
        item_features={
            "text": rng.normal(size=(n_items, 8)).astype(np.float32),
            "image": rng.random((n_items, 5)).astype(np.float32),
        }
    )


class TestDeepFusion(RecommenderContract):
    implicit = True

    def make_model(self) -> DeepFusion:
        return DeepFusion(n_factors=8, hidden=16, epochs=3, batch_size=128)

    def make_side(self, train: Interactions) -> SideInfo:
        return _side(train.n_items)


class TestDeepFusionRating(RecommenderContract):
    def make_model(self) -> DeepFusion:
        return DeepFusion(fusion="gated", loss="mse", n_factors=8, hidden=16, epochs=3, batch_size=128)

    def make_side(self, train: Interactions) -> SideInfo:
        return _side(train.n_items)


def test_registry_name() -> None:
    """The package's own registry names the class (nothing in this module registers it): by name, by class, and
    through make_model."""
    assert NAME in available_models() and MODELS[NAME] == PATH
    assert get_model_class(NAME) is DeepFusion
    assert registered_name(DeepFusion) == NAME
    assert isinstance(make_model(NAME), DeepFusion)


def test_importing_the_registry_does_not_import_torch() -> None:
    code = "import sys, fusionrec.models, fusionrec.models.registry; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------- planted signal
def _ndcg(model: DeepFusion, split: Split, candidates: np.ndarray | None = None) -> float:
    from fusionrec.evaluation.protocol import evaluate_ranking

    res = evaluate_ranking(model, split.train, split.test, k=20, candidates=candidates)
    return res.metrics["NDCG@20"]


@pytest.fixture(scope="module")
def planted() -> tuple[object, SideInfo]:
    from fusionrec.data.datasets.synthetic import make_synthetic
    from fusionrec.features.pipeline import build_side_info

    ds = make_synthetic(n_users=120, n_items=80, with_audio=False, with_images=False, with_social=False)
    side, _ = build_side_info(ds, cache=False)
    return ds, side


@pytest.fixture(scope="module")
def warm_split(planted: tuple[object, SideInfo]) -> Split:
    from fusionrec.data.splits import per_user_split

    s = per_user_split(planted[0], (0.8, 0.1, 0.1), seed=0)  # type: ignore[arg-type]
    return Split(train=s.train.binarize(), test=s.test, valid=s.valid, name=s.name)


@pytest.fixture(scope="module")
def random_ndcg(warm_split: Split) -> float:
    from fusionrec.models.baselines import Random

    return _ndcg(Random(seed=0).fit(warm_split.train), warm_split)  # type: ignore[arg-type]


@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_fusion_mode_beats_random(
    fusion: str, planted: tuple[object, SideInfo], warm_split: Split, random_ndcg: float
) -> None:
    model = DeepFusion(fusion=fusion, epochs=6, n_factors=16, batch_size=64).fit(warm_split.train, planted[1])
    assert np.isfinite(model.item_vectors_).all()
    assert _ndcg(model, warm_split) > random_ndcg + 0.05


def test_bce_loss_beats_random(planted: tuple[object, SideInfo], warm_split: Split, random_ndcg: float) -> None:
    model = DeepFusion(loss="bce", fusion="concat", epochs=6, n_factors=16, batch_size=64).fit(
        warm_split.train, planted[1]
    )
    assert _ndcg(model, warm_split) > random_ndcg + 0.05


def test_mse_loss_predicts_ratings_better_than_the_mean(planted: tuple[object, SideInfo]) -> None:
    from fusionrec.data.splits import per_user_split

    split = per_user_split(planted[0], (0.8, 0.1, 0.1), seed=0)  # type: ignore[arg-type]
    model = DeepFusion(loss="mse", fusion="gated", epochs=15, n_factors=16, batch_size=64).fit(
        split.train, planted[1], valid=split.valid
    )
    test = split.test.matrix.tocsr()
    pred = model.predict(split.test.row_indices(), test.indices)
    rmse = float(np.sqrt(np.mean((pred - test.data) ** 2)))
    baseline = float(np.sqrt(np.mean((split.train.matrix.data.mean() - test.data) ** 2)))
    assert rmse < baseline


def test_early_stopping_keeps_the_best_epoch(planted: tuple[object, SideInfo], warm_split: Split) -> None:
    model = DeepFusion(epochs=8, patience=1, n_factors=16, batch_size=64).fit(
        warm_split.train, planted[1], valid=warm_split.valid
    )
    hist = model.valid_history_
    assert 1 <= len(hist) <= 8
    assert model.best_epoch_ == int(np.argmax(hist))
    again = DeepFusion(epochs=8, patience=1, n_factors=16, batch_size=64).fit(
        warm_split.train, planted[1], valid=warm_split.valid
    )
    np.testing.assert_allclose(again.valid_history_, hist)


def test_cold_items_scored_from_content(planted: tuple[object, SideInfo]) -> None:
    from fusionrec.data.splits import cold_items_split

    ds, side = planted
    split = cold_items_split(ds, test=0.25, valid=0.0, seed=1)  # type: ignore[arg-type]
    train = split.train.binarize()
    cold = split.meta["test_items"]
    assert (train.item_counts()[cold] == 0).all()
    model = DeepFusion(modalities=["genres", "text"], epochs=8, n_factors=16, batch_size=64).fit(train, side)
    s = model.score(np.arange(20), cold)
    assert np.isfinite(s).all() and (s.std(axis=1) > 1e-4).all()
    from fusionrec.models.baselines import Random

    cold_split = Split(train=train, test=split.test)
    assert _ndcg(model, cold_split, cold) > _ndcg(Random(seed=0).fit(train), cold_split, cold) + 0.05  # type: ignore[arg-type]
    # behaviour only: every cold item has the same score for a user (nothing to tell them apart)
    ids_only = DeepFusion(modalities=[], epochs=2, n_factors=8).fit(train, side)
    assert np.allclose(ids_only.score(np.arange(5), cold).std(axis=1), 0.0, atol=1e-6)


def test_missing_modality_rows_are_masked() -> None:
    from tests.conftest import make_interactions

    train = make_interactions(seed=2, explicit=False)
    side = _side(train.n_items)
    side.item_features["image"][::2] = 0.0
    side.item_features["text"][1::3] = np.nan  # unreadable rows count as missing too
    side.item_present["image"] = np.arange(train.n_items) % 2 == 1
    for fusion in FUSIONS:
        model = DeepFusion(fusion=fusion, epochs=2, n_factors=8).fit(train, side)
        assert np.isfinite(model.score(np.arange(train.n_users))).all()
        # inputs: id, image, text (sorted); item 0 has no image, item 1 an unreadable text
        assert model.item_mask_[0, 1] == 0.0 and model.item_mask_[1, 2] == 0.0 and model.item_mask_[1, 1] == 1.0
        new = model.add_items({"text": np.ones((2, 8), dtype=np.float32)})  # image left out
        assert np.isfinite(model.score(np.arange(3), new)).all()


def test_text_tower_cnn_lstm_and_add_items_after_load(tmp_path: Path) -> None:
    from tests.conftest import make_interactions

    train = make_interactions(seed=4, explicit=False)
    rng = np.random.default_rng(0)
    words = np.array(["red", "blue", "green", "fast", "slow", "big"])
    texts = [" ".join(rng.choice(words, 6)) for _ in range(train.n_items)]
    texts[3] = ""  # no text: masked
    side = _side(train.n_items)
    model = DeepFusion(text_tower="cnn+lstm", fusion="late", epochs=2, n_factors=8, text_vocab=64, text_len=8)
    model.fit(train, side, texts=texts)
    assert model.tokens_.shape == (train.n_items, 8) and model.item_mask_[3, -1] == 0
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, DeepFusion)
    feats = {"text": rng.normal(size=(2, 8)).astype(np.float32), "image": rng.random((2, 5)).astype(np.float32)}
    a = model.add_items(feats, texts=["red fast", "big blue green"])
    b = loaded.add_items(feats, texts=["red fast", "big blue green"])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(model.score(np.arange(4)), loaded.score(np.arange(4)), rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="texts"):
        DeepFusion(text_tower="cnn", epochs=1).fit(train, side)


def test_hash_tokenize_is_stable_and_padded() -> None:
    tok = hash_tokenize(["Hello, World!", None, "hello"], vocab_size=50, max_len=3)
    assert tok.shape == (3, 3) and tok.dtype == np.int64
    assert tok[0, 0] == tok[2, 0] and tok[0, 2] == 0 and (tok[1] == 0).all()
    assert ((tok >= 0) & (tok < 50)).all()


def test_shapes_of_the_pieces() -> None:
    text = TextTower(TextTowerConfig(vocab_size=20, out_dim=6, encoder="cnn+lstm"))
    assert text(torch.tensor([[1, 2, 3, 0], [0, 0, 0, 0]])).shape == (2, 6)
    for fusion in FUSIONS:
        cfg = FusionNetConfig(n_users=3, n_items=4, dim=6, dense=(("a", 5),), fusion=fusion)
        net = FusionNet(cfg)
        vec, bias = net.item_vectors(
            torch.tensor([0, 3]), {"a": torch.ones(2, 5)}, None, torch.tensor([[1.0, 1.0], [0.0, 1.0]])
        )
        assert vec.shape == (2, cfg.vector_dim) and bias.shape == (2,)
        assert net(torch.tensor([0, 2]), vec, bias).shape == (2,)


def test_bad_parameters_raise_config_errors() -> None:
    from tests.conftest import make_interactions

    train = make_interactions(seed=1, explicit=False)
    side = _side(train.n_items)
    for bad in ({"fusion": "sum"}, {"loss": "hinge"}, {"n_factors": 0}, {"text_tower": "gru"}, {"dropout": 1.0}):
        with pytest.raises(ConfigError):
            DeepFusion(**bad).fit(train, side)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="item_ids"):
        DeepFusion(modalities=[], item_ids=False).fit(train, side)
    with pytest.raises(DataError, match="audio"):
        DeepFusion(modalities=["audio"]).fit(train, side)


# ---------------------------------------------------------------------- declaration, forgetting, vocabulary
def _odd() -> tuple[Interactions, SideInfo, list[str]]:
    """61 users x 42 items (sizes unlike every other one the model uses: n_factors 8 / 24, hidden 16, widths 5 and
    8, text_len 6, text_vocab 64), their item features and texts."""
    from tests.conftest import make_interactions

    train = make_interactions(n_users=61, n_items=43, explicit=False, seed=5)
    words = np.array(["red", "blue", "green", "fast", "slow", "big"])
    rng = np.random.default_rng(5)
    return train, _side(train.n_items), [" ".join(rng.choice(words, 4)) for _ in range(train.n_items)]


ODD = {
    "attention": {"n_factors": 8, "hidden": 16, "epochs": 2, "batch_size": 64},
    "late+text": {"n_factors": 8, "hidden": 16, "epochs": 1, "fusion": "late", "text_tower": "cnn", "text_len": 6},
    "mse": {"n_factors": 8, "hidden": 16, "epochs": 1, "fusion": "gated", "loss": "mse", "text_vocab": 64},
}


def _saved(path: Path) -> dict[str, np.ndarray]:
    with np.load(path / "arrays.npz", allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def _holding(arrays: dict[str, np.ndarray], run: np.ndarray) -> list[str]:
    """Names of the arrays whose flattened values hold ``run`` as consecutive entries."""
    run = np.asarray(run).ravel()
    return [
        key
        for key, value in arrays.items()
        if value.dtype.kind == run.dtype.kind
        and value.size >= run.size
        and (np.lib.stride_tricks.sliding_window_view(value.ravel(), run.size) == run).all(axis=1).any()
    ]


@pytest.mark.parametrize("variant", sorted(ODD))
def test_every_per_user_and_per_item_array_is_declared(variant: str) -> None:
    train, side, texts = _odd()
    model = DeepFusion(**ODD[variant]).fit(train, side, texts=texts)
    assert undeclared_state(model) == []
    decl = DeepFusion.declaration()
    assert {"net.user_emb.weight_", "net.user_bias.weight_", "user_factors_", "user_bias_"} <= set(decl.user_state)
    assert decl.fit_inputs == {"side", "valid", "texts"} and decl.modality_param == "modalities"
    assert (
        decl.can_add_items and decl.has_factors and not decl.can_fold_in and decl.explanation_hooks == {"score_parts"}
    )


def test_forget_user_blanks_the_network_user_tables_in_the_saved_files(tmp_path: Path) -> None:
    """The issue: DeepFusion kept a forgotten user's rows of net.user_emb and net.user_bias in its files.  After
    forget_user(u) and save, neither u's embedding nor u's bias is anywhere in arrays.npz, the live network is rebuilt
    from the blanked arrays, and every other user scores (and is explained) exactly as before."""
    train, side, _ = _odd()
    model = DeepFusion(**ODD["attention"]).fit(train, side)
    u = 7
    emb, bias = model.user_factors_[u].copy(), model.user_bias_[u : u + 1].copy()
    assert emb.any() and bias.any()
    others = np.setdiff1d(np.arange(train.n_users), [u])
    before = model.score(others)
    parts = model.score_parts(3, 5, side=side).parts  # runs the network
    model.save(tmp_path / "kept")
    kept = _saved(tmp_path / "kept")  # the search finds them before forgetting
    assert {"user_factors_", "net.user_emb.weight_"} <= set(_holding(kept, emb))
    assert {"user_bias_", "net.user_bias.weight_"} <= set(_holding(kept, bias))

    model.forget_user(u)
    model.save(tmp_path / "m")
    arrays = _saved(tmp_path / "m")
    assert _holding(arrays, emb) == [] and _holding(arrays, bias) == []
    assert not model._network().user_emb.weight[u].any()  # rebuilt from the arrays, not the fitted module
    np.testing.assert_array_equal(model.score(others), before)
    assert model.score_parts(3, 5, side=side).parts == parts
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.score(others), before)
    assert loaded.score_parts(3, 5, side=side).parts == parts  # type: ignore[attr-defined]


def test_old_names_dim_and_weight_decay_still_work_with_a_warning() -> None:
    with pytest.warns(FutureWarning, match="'dim' was renamed 'n_factors'"):
        model = DeepFusion(dim=8, hidden=16)
    assert model.n_factors == 8 and "dim" not in model.get_params()
    with pytest.warns(FutureWarning, match="'weight_decay' was renamed 'reg'"):
        model.set_params(weight_decay=1e-4)
    assert model.reg == 1e-4
    assert DeepFusion.upgrade_params({"dim": 16, "weight_decay": 0.0}) == {"n_factors": 16, "reg": 0.0}


def test_bundles_from_before_the_declaration_load() -> None:
    """A model without a text tower used to keep ``tokens_`` as ``[0, 0]``; it loads as ``[I, 0]`` and adds items."""
    train, side, _ = _odd()
    model = DeepFusion(**ODD["attention"]).fit(train, side)
    old = {**model._get_state(), "tokens_": np.zeros((0, 0), dtype=np.int64)}
    again = DeepFusion(**ODD["attention"])
    again._set_state(old)
    assert again.tokens_.shape == (train.n_items, 0)
    np.testing.assert_array_equal(again.score(np.arange(4)), model.score(np.arange(4)))
    new = {"text": np.ones((2, 8), np.float32), "image": np.ones((2, 5), np.float32)}
    np.testing.assert_array_equal(again.add_items(new), model.add_items(new))
    assert again.tokens_.shape == (train.n_items + 2, 0) and undeclared_state(again) == []
