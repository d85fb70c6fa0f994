from __future__ import annotations

import numpy as np
import pytest

from fusionrec.data.datasets.synthetic import make_synthetic
from fusionrec.data.splits import make_split
from fusionrec.errors import ConfigError
from fusionrec.evaluation.ablation import modality_ablation, modality_param
from fusionrec.evaluation.protocol import evaluate_ranking
from fusionrec.features.pipeline import build_side_info
from fusionrec.models.linear import EASE


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    ds = make_synthetic(n_users=120, n_items=80, seed=0, with_images=False, with_audio=False, with_social=False)
    split = make_split(ds.interactions, "per_user", ratios=[0.8, 0.1, 0.1], seed=0)
    side, _ = build_side_info(ds, encoders={"profile": None}, cache=False)
    return ds, split, side


def test_modality_param_by_model() -> None:
    assert modality_param("CEASE") == "modalities"
    assert modality_param("HybridMF") == "item_features"
    with pytest.raises(ConfigError, match="no item-modality parameter"):
        modality_param("EASE")


def test_ablation_rows_all_none_only_without(data) -> None:  # type: ignore[no-untyped-def]
    ds, split, side = data
    mods = ["genres", "text"]
    rows = modality_ablation(
        {"name": "CEASE", "params": {"reg": 50.0, "side_weight": 5.0}}, ds, split, side=side, modalities=mods, k=10
    )
    assert [r["variant"] for r in rows] == [
        "all", "no content", "only genres", "only text", "without genres", "without text",
    ]  # fmt: skip
    assert rows[0]["modalities"] == mods and rows[2]["modalities"] == ["genres"]
    assert all(r["model"] == "CEASE" and "NDCG@10" in r and "Recall@10" in r for r in rows)
    assert rows[0]["delta"] == 0.0
    for r in rows[1:]:
        assert r["delta"] == pytest.approx(r["NDCG@10"] - rows[0]["NDCG@10"])
    # "no content" of CEASE is side_weight=0, i.e. exactly EASE (scored with the same masking)
    ease = EASE(reg=50.0).fit(split.train)
    ref = evaluate_ranking(ease, split.train, split.test, k=10, exclude=[split.train, split.valid])
    assert rows[1]["NDCG@10"] == pytest.approx(ref.metrics["NDCG@10"])
    # with two modalities "only a" is "without b"
    assert rows[2]["NDCG@10"] == pytest.approx(rows[5]["NDCG@10"])
    assert np.isfinite([r["fit_s"] for r in rows]).all()


def test_ablation_errors(data) -> None:  # type: ignore[no-untyped-def]
    ds, split, side = data
    with pytest.raises(ConfigError, match="no item modality"):
        modality_ablation("CEASE", ds, split, side=side, modalities=["nope"])
    with pytest.raises(ConfigError, match="no item-modality parameter"):
        modality_ablation("EASE", ds, split, side=side)
    with pytest.raises(ConfigError, match="needs side information"):
        modality_ablation("CEASE", None, split)
