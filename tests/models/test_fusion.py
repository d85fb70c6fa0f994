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
from fusionrec.models import registry as registry_module

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


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    # until registry.py carries the line: "DeepFusion": "fusionrec.models.fusion.model:DeepFusion"
    monkeypatch.setitem(registry_module.MODELS, NAME, PATH)


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
        return DeepFusion(dim=8, hidden=16, epochs=3, batch_size=128)

    def make_side(self, train: Interactions) -> SideInfo:
        return _side(train.n_items)


class TestDeepFusionRating(RecommenderContract):
    def make_model(self) -> DeepFusion:
        return DeepFusion(fusion="gated", loss="mse", dim=8, hidden=16, epochs=3, batch_size=128)

    def make_side(self, train: Interactions) -> SideInfo:
        return _side(train.n_items)


def test_registry_name() -> None:
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
    model = DeepFusion(fusion=fusion, epochs=6, dim=16, batch_size=64).fit(warm_split.train, planted[1])
    assert np.isfinite(model.item_vectors_).all()
    assert _ndcg(model, warm_split) > random_ndcg + 0.05


def test_bce_loss_beats_random(planted: tuple[object, SideInfo], warm_split: Split, random_ndcg: float) -> None:
    model = DeepFusion(loss="bce", fusion="concat", epochs=6, dim=16, batch_size=64).fit(warm_split.train, planted[1])
    assert _ndcg(model, warm_split) > random_ndcg + 0.05


def test_mse_loss_predicts_ratings_better_than_the_mean(planted: tuple[object, SideInfo]) -> None:
    from fusionrec.data.splits import per_user_split

    split = per_user_split(planted[0], (0.8, 0.1, 0.1), seed=0)  # type: ignore[arg-type]
    model = DeepFusion(loss="mse", fusion="gated", epochs=15, dim=16, batch_size=64).fit(
        split.train, planted[1], valid=split.valid
    )
    test = split.test.matrix.tocsr()
    pred = model.predict(split.test.row_indices(), test.indices)
    rmse = float(np.sqrt(np.mean((pred - test.data) ** 2)))
    baseline = float(np.sqrt(np.mean((split.train.matrix.data.mean() - test.data) ** 2)))
    assert rmse < baseline


def test_early_stopping_keeps_the_best_epoch(planted: tuple[object, SideInfo], warm_split: Split) -> None:
    model = DeepFusion(epochs=8, patience=1, dim=16, batch_size=64).fit(
        warm_split.train, planted[1], valid=warm_split.valid
    )
    hist = model.valid_history_
    assert 1 <= len(hist) <= 8
    assert model.best_epoch_ == int(np.argmax(hist))
    again = DeepFusion(epochs=8, patience=1, dim=16, batch_size=64).fit(
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
    model = DeepFusion(modalities=["genres", "text"], epochs=8, dim=16, batch_size=64).fit(train, side)
    s = model.score(np.arange(20), cold)
    assert np.isfinite(s).all() and (s.std(axis=1) > 1e-4).all()
    from fusionrec.models.baselines import Random

    cold_split = Split(train=train, test=split.test)
    assert _ndcg(model, cold_split, cold) > _ndcg(Random(seed=0).fit(train), cold_split, cold) + 0.05  # type: ignore[arg-type]
    # behaviour only: every cold item has the same score for a user (nothing to tell them apart)
    ids_only = DeepFusion(modalities=[], epochs=2, dim=8).fit(train, side)
    assert np.allclose(ids_only.score(np.arange(5), cold).std(axis=1), 0.0, atol=1e-6)


def test_missing_modality_rows_are_masked() -> None:
    from tests.conftest import make_interactions

    train = make_interactions(seed=2, explicit=False)
    side = _side(train.n_items)
    side.item_features["image"][::2] = 0.0
    side.item_features["text"][1::3] = np.nan  # unreadable rows count as missing too
    side.item_present["image"] = np.arange(train.n_items) % 2 == 1
    for fusion in FUSIONS:
        model = DeepFusion(fusion=fusion, epochs=2, dim=8).fit(train, side)
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
    model = DeepFusion(text_tower="cnn+lstm", fusion="late", epochs=2, dim=8, text_vocab=64, text_len=8)
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
    for bad in ({"fusion": "sum"}, {"loss": "hinge"}, {"dim": 0}, {"text_tower": "gru"}, {"dropout": 1.0}):
        with pytest.raises(ConfigError):
            DeepFusion(**bad).fit(train, side)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="item_ids"):
        DeepFusion(modalities=[], item_ids=False).fit(train, side)
    with pytest.raises(DataError, match="audio"):
        DeepFusion(modalities=["audio"]).fit(train, side)
