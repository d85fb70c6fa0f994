from __future__ import annotations

import json
from pathlib import Path

import pytest

from fusionrec.data import Split
from fusionrec.errors import ConfigError
from fusionrec.evaluation.experiment import ExperimentConfig, load_config, run_experiment
from fusionrec.evaluation.report import write_report

CONFIG = {
    "name": "unit",
    "dataset": "synthetic",
    "split": {"strategy": "random"},
    "models": ["MostPopular", {"name": "BiasBaseline", "params": {"reg_user": 5.0}, "label": "bias"}],
    "k": [5, 10],
}


def test_config_parsing_and_errors(tmp_path: Path) -> None:
    cfg = ExperimentConfig.from_dict(CONFIG)
    assert [m.display for m in cfg.models] == ["MostPopular", "bias"] and cfg.k == (5, 10)
    p = tmp_path / "c.toml"
    p.write_text('name = "t"\ndataset = "synthetic"\nsplit = "random"\nmodels = ["MostPopular"]\n')
    assert load_config(p).name == "t"
    with pytest.raises(ConfigError, match="models"):
        ExperimentConfig.from_dict({"dataset": "x", "split": "random"})
    with pytest.raises(ConfigError, match="unknown config key"):
        ExperimentConfig.from_dict({**CONFIG, "modles": []})
    with pytest.raises(ConfigError, match="distinct"):
        ExperimentConfig.from_dict({**CONFIG, "models": ["MostPopular", "MostPopular"]})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid"):
        load_config(bad)
    with pytest.raises(ConfigError, match="unknown model"):
        run_experiment(ExperimentConfig.from_dict({**CONFIG, "models": ["Nope"]}), split=None, dataset=None)  # type: ignore[arg-type]


def test_run_and_report(small_split: Split, tmp_path: Path) -> None:
    cfg = ExperimentConfig.from_dict(CONFIG)
    result = run_experiment(cfg, split=small_split)
    rows = result.table()
    assert [r["model"] for r in rows] == ["MostPopular", "bias"]
    assert "NDCG@10" in rows[0] and "RMSE" in rows[1] and "RMSE" not in rows[0]
    assert result.significance and result.significance[0]["metric"] == "NDCG@10"
    paths = write_report(result, tmp_path / "out")
    page = paths["html"].read_text()
    assert "<table>" in page and "data:image/png;base64," in page and "bias" in page
    data = json.loads(paths["json"].read_text())
    assert data["results"][1]["model"] == "bias" and data["params"]["bias"]["reg_user"] == 5.0
