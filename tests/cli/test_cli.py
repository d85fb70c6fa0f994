from __future__ import annotations

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
    assert "top 10 for user" in out.output
    data = json.loads((tmp_path / "qs" / "results.json").read_text())
    names = {r["model"] for r in data["results"]}
    assert {"MostPopular", "BiasBaseline"} <= names and len(names) >= 3
    assert (tmp_path / "qs" / "report.html").stat().st_size > 10_000
