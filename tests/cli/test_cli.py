from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fusionrec.cli.main import app

runner = CliRunner()


def test_help_lists_commands() -> None:
    out = runner.invoke(app, ["--help"])
    assert out.exit_code == 0
    for cmd in ("datasets", "evaluate", "quickstart"):
        assert cmd in out.output


def test_datasets_list_without_data_dir(tmp_path: Path) -> None:
    out = runner.invoke(app, ["datasets", "list", "--data-dir", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "ml-100k" in out.output and "synthetic" in out.output


def test_evaluate_reports_bad_config_clearly(tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"dataset": "synthetic", "split": "random", "models": ["NoSuchModel"]}))
    out = runner.invoke(app, ["evaluate", str(cfg), "--out", str(tmp_path / "o")])
    assert out.exit_code == 2
    assert "unknown model" in out.output


@pytest.mark.realdata
def test_evaluate_on_a_real_split(data_dir: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(
        json.dumps(
            {
                "name": "cli",
                "dataset": {},
                "split": {"file": "splits/ml-100k.random811.csv"},
                "models": ["MostPopular", "BiasBaseline"],
                "k": [10],
            }
        )
    )
    out = runner.invoke(app, ["evaluate", str(cfg), "--out", str(tmp_path / "o"), "--data-dir", str(data_dir)])
    assert out.exit_code == 0, out.output
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert {r["model"] for r in data["results"]} == {"MostPopular", "BiasBaseline"}
    assert (tmp_path / "o" / "report.html").exists()


def test_quickstart_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUSIONREC_CACHE_DIR", str(tmp_path / "cache"))
    out = runner.invoke(app, ["quickstart", "--out", str(tmp_path / "qs"), "--users", "80", "--items", "60"])
    assert out.exit_code == 0, out.output
    assert "top 10 for user" in out.output and "modality ablation: HybridMF" in out.output
    data = json.loads((tmp_path / "qs" / "results.json").read_text())
    names = {r["model"] for r in data["results"]}
    expected = {"MostPopular", "ItemKNN", "EASE", "ALS", "BPR", "CEASE", "HybridMF", "VBPR", "RRF(EASE+ContentKNN)"}
    if importlib.util.find_spec("torch") is not None:
        expected |= {"DeepFusion early", "DeepFusion late", "DeepFusion attention", "GraphFusion"}
    assert expected <= names, expected - names
    assert "BiasBaseline" not in names  # rating models do not rank: not in the top-N quickstart
    variants = [r["variant"] for r in data["ablation"]]
    assert variants[:2] == ["all", "no content"] and "only text" in variants and "without genres" in variants
    page = (tmp_path / "qs" / "report.html").read_text()
    assert '<meta name="viewport"' in page and 'class="best"' in page
    assert "Modality ablation: HybridMF" in page and all(name in page for name in expected)


def test_quickstart_item_knn_ranks_in_ranking_mode() -> None:
    from fusionrec.cli.main import QUICKSTART_MODELS

    knn = next(m for m in QUICKSTART_MODELS if m["name"] == "ItemKNN")
    assert knn["params"].get("implicit") is True  # predicted ratings rank worse than MostPopular


def test_evaluate_user_files_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUSIONREC_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "shop"
    folder.mkdir()
    rows = ["user,item,rating"] + [f"u{u},i{(u * 7 + j) % 25},{1 + (u + j) % 5}" for u in range(30) for j in range(6)]
    (folder / "ratings.csv").write_text("\n".join(rows) + "\n")
    cfg = folder / "experiment.json"
    cfg.write_text(
        json.dumps(
            {
                "name": "shop",
                "dataset": {"name": "shop", "files": {"interactions": "ratings.csv"}},
                "split": {"strategy": "random", "params": {"test": 0.2, "seed": 0}},
                "models": ["MostPopular", {"name": "ItemKNN", "params": {"implicit": True, "k": 10}}],
                "k": [5],
            }
        )
    )
    monkeypatch.chdir(tmp_path)  # relative paths are read from the config's folder, not the cwd
    out = runner.invoke(app, ["evaluate", str(cfg), "--out", str(tmp_path / "o")])
    assert out.exit_code == 0, out.output
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert [r["model"] for r in data["results"]] == ["MostPopular", "ItemKNN"]


def test_evaluate_reports_a_misspelled_parameter_before_training(tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(
        json.dumps({"dataset": "synthetic", "split": "random", "models": [{"name": "ALS", "params": {"factor": 8}}]})
    )
    out = runner.invoke(app, ["evaluate", str(cfg), "--out", str(tmp_path / "o")])
    assert out.exit_code == 2
    text = " ".join(out.output.split())
    assert "ALS has no parameter 'factor'" in text and "fitting" not in text
