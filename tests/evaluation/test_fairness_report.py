"""``"fairness": true`` in an experiment: the fairness extras reach the results table and the report page."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusionrec.data import Split
from fusionrec.errors import ConfigError
from fusionrec.evaluation.experiment import ExperimentConfig, run_experiment
from fusionrec.evaluation.report import best_cells, render_html

CONFIG = {
    "name": "fair",
    "dataset": {},
    "split": {"strategy": "random", "params": {"seed": 0}},
    "models": ["MostPopular", {"name": "ItemKNN", "params": {"k": 20, "implicit": True}}],
    "k": [5, 10],
    "significance": False,
    "compute_auc": False,
}


def test_fairness_extras_in_table_and_report(small_split: Split, tmp_path: Path) -> None:
    result = run_experiment(ExperimentConfig.from_dict({**CONFIG, "fairness": True}), split=small_split)
    rows = result.table()
    for key in ("NDCGGap@10", "NDCGGap@5", "ExposureGini@10", "PopularShare@10", "CalibrationKL@10"):
        assert all(key in r for r in rows), key
    pop = next(r for r in rows if r["model"] == "MostPopular")
    # popularity puts the whole short head in every list: the largest popular share there is
    assert pop["PopularShare@10"] == max(r["PopularShare@10"] for r in rows) > 0
    # fairness columns: lower is better
    best = best_cells(rows, ["ExposureGini@10"])
    assert best["ExposureGini@10"] == min(r["ExposureGini@10"] for r in rows)
    page = render_html(result, plots=[])
    assert "<h2>Fairness</h2>" in page and "users 3" in page and "exposure 1" in page
    plain = run_experiment(ExperimentConfig.from_dict(CONFIG), split=small_split)
    assert "NDCGGap@10" not in plain.table()[0]
    assert "<h2>Fairness</h2>" not in render_html(plain, plots=[])


def test_unknown_key_still_rejected() -> None:
    with pytest.raises(ConfigError, match="fairnes"):
        ExperimentConfig.from_dict({**CONFIG, "fairnes": True})


def test_a_model_entry_can_rerank(small_split: Split) -> None:
    models = [
        "MostPopular",
        {"name": "MostPopular", "label": "pop capped", "rerank": {"max_share": {"0": 0.1}}},
        {"name": "MostPopular", "label": "pop diverse", "rerank": {"diversify": 0.0}},
    ]
    result = run_experiment(
        ExperimentConfig.from_dict({**CONFIG, "models": models, "fairness": True}), split=small_split
    )
    rows = {r["model"]: r for r in result.table()}
    assert rows["pop capped"]["PopularShare@10"] <= 0.1 < rows["MostPopular"]["PopularShare@10"]
    assert rows["pop diverse"]["NDCG@10"] == rows["MostPopular"]["NDCG@10"]  # lam 0: the same lists
    with pytest.raises(ConfigError, match="unknown rerank option"):
        ExperimentConfig.from_dict({**CONFIG, "models": [{"name": "MostPopular", "rerank": {"diverse": 0.3}}]})
