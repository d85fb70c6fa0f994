"""fusionrec.tracking (issue 14): experiments, tunings and trained bundles logged to MLflow -- runs, parameters,
metrics, per-epoch curves and artifacts -- in the default local store or at a given tracking URI."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mlflow")

from fusionrec import tracking
from fusionrec.errors import ConfigError
from fusionrec.evaluation.experiment import ExperimentConfig, run_experiment
from fusionrec.evaluation.report import write_report

CONFIG: dict[str, Any] = {
    "name": "track-me",
    "dataset": {"name": "synthetic", "params": {"n_users": 120, "n_items": 80, "seed": 0}},
    "split": {"strategy": "per_user", "params": {"ratios": [0.8, 0.1, 0.1], "seed": 0}},
    "models": ["MostPopular", {"name": "BPR", "params": {"n_factors": 8, "epochs": 3}}],
    "k": [10],
    "significance": False,
}


@contextmanager
def quiet() -> Iterator[None]:
    """MLflow's and SQLAlchemy's deprecation warnings are not what these tests check."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def client(uri: str) -> Any:
    with quiet():
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=uri)


def runs(uri: str, experiment: str = tracking.DEFAULT_EXPERIMENT) -> list[Any]:
    with quiet():
        c = client(uri)
        exp = c.get_experiment_by_name(experiment)
        assert exp is not None, f"no MLflow experiment {experiment!r} at {uri}"
        return list(c.search_runs([exp.experiment_id], max_results=500))


def artifact_files(uri: str, run_id: str, path: str = "") -> set[str]:
    with quiet():
        c = client(uri)
        out: set[str] = set()
        for info in c.list_artifacts(run_id, path or None):
            out |= artifact_files(uri, run_id, info.path) if info.is_dir else {info.path}
        return out


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the module (creating one runs MLflow's migrations: seconds); tests use their own
    experiments or commands."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'ml.db'}"


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Path]]:
    res = run_experiment(ExperimentConfig.from_dict(CONFIG))
    return res, write_report(res, tmp_path_factory.mktemp("report"))


def test_an_experiment_is_logged_with_params_metrics_curves_and_artifacts(
    uri: str, result: tuple[Any, dict[str, Path]]
) -> None:
    res, paths = result
    with quiet():
        run_id = tracking.log_experiment(res, paths, tracking_uri=uri, experiment="exp")
    all_runs = runs(uri, "exp")
    parent = next(r for r in all_runs if r.info.run_id == run_id)
    children = {r.data.tags["fusionrec.label"]: r for r in all_runs if r.info.run_id != run_id}
    assert set(children) == {"MostPopular", "BPR"}
    assert all(r.data.tags["mlflow.parentRunId"] == run_id for r in children.values())
    assert parent.data.tags["fusionrec.command"] == "evaluate"
    assert parent.data.params["config.name"] == "track-me"
    ndcg = res.models[1].ranking.metrics["NDCG@10"]
    assert parent.data.metrics["BPR/NDCG_at_10"] == pytest.approx(ndcg)
    bpr = children["BPR"]
    assert bpr.data.params["n_factors"] == "8" and bpr.data.params["epochs"] == "3"
    assert bpr.data.metrics["NDCG_at_10"] == pytest.approx(ndcg)
    with quiet():
        curve = client(uri).get_metric_history(bpr.info.run_id, "loss")
    assert [m.step for m in sorted(curve, key=lambda m: m.step)] == [0, 1, 2]  # one point per epoch
    assert [m.value for m in sorted(curve, key=lambda m: m.step)] == pytest.approx(res.models[1].model.loss_history_)
    assert "loss" not in children["MostPopular"].data.metrics  # no curve where the model keeps none
    assert artifact_files(uri, run_id) == {"report.html", "results.json"}
    beside = Path(uri.removeprefix("sqlite:///")).parent / "artifacts"  # next to the database, not in the cwd
    assert list(beside.rglob("report.html"))


def test_the_default_store_is_local_under_mlruns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, result: tuple[Any, dict[str, Path]]
) -> None:
    monkeypatch.chdir(tmp_path)
    res, paths = result
    with quiet():
        run_id = tracking.log_experiment(res, paths, experiment="default-store")
    uri, artifacts = tracking.default_tracking_uri(tmp_path / "mlruns")
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()
    assert [r.info.run_id for r in runs(uri, "default-store") if r.info.run_id == run_id]
    assert (tmp_path / "mlruns" / "artifacts").is_dir() and artifacts.startswith("file://")
    assert list((tmp_path / "mlruns" / "artifacts").rglob("report.html"))


def test_an_unusable_store_is_a_config_error(tmp_path: Path, result: tuple[Any, dict[str, Path]]) -> None:
    bad = tmp_path / "not-a-db.db"
    bad.write_text("this is not SQLite")
    with quiet(), pytest.raises(ConfigError, match="cannot use the MLflow tracking store"):
        tracking.log_experiment(result[0], tracking_uri=str(bad))


def test_a_tuning_is_logged_with_its_trials_and_best_model(tmp_path: Path, uri: str) -> None:
    pytest.importorskip("optuna")
    from fusionrec.tuning import tune

    cfg = {**CONFIG, "models": ["EASE"], "tune": {"models": ["EASE"]}}
    with quiet():
        res = tune(cfg, n_trials=3, storage="memory", out=tmp_path / "out", track=True, tracking_uri=uri)
    all_runs = runs(uri)
    parent = next(r for r in all_runs if r.data.tags.get("fusionrec.command") == "tune")
    best = next(r for r in all_runs if r.info.run_name == "EASE (best)")
    trials = [r for r in all_runs if "trial" in r.info.run_name]
    assert len(trials) == 3 and all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in trials)
    assert float(best.data.params["reg"]) == pytest.approx(res.models[0].best_params["reg"])
    assert best.data.metrics["valid_NDCG_at_20"] == pytest.approx(res.models[0].best_value)
    assert parent.data.metrics["EASE/test/NDCG_at_20"] == pytest.approx(res.models[0].test["NDCG@20"])
    assert {"tuning.json", "report.html", "results.json"} <= artifact_files(uri, parent.info.run_id)
    assert any(p.startswith("model/") for p in artifact_files(uri, best.info.run_id))  # the saved best model


def cli() -> tuple[Any, Any]:
    """typer's CliRunner and the app (click 8.5 deprecates names typer 0.20 imports: not ours to fail on)."""
    with quiet():
        from typer.testing import CliRunner

        from fusionrec.cli.main import app
    return CliRunner(), app


def test_cli_evaluate_and_train_track(tmp_path: Path, uri: str) -> None:
    runner, app = cli()
    cfg = tmp_path / "exp.json"
    cfg.write_text(json.dumps({**CONFIG, "models": ["MostPopular"]}))
    with quiet():
        res = runner.invoke(app, ["evaluate", str(cfg), "--out", str(tmp_path / "out"), "--tracking-uri", uri])
    assert res.exit_code == 0, res.output
    assert "MLflow run:" in res.output

    log = tmp_path / "log.csv"
    log.write_text("user,item,rating\n1,10,5\n1,11,3\n2,10,4\n2,12,1\n3,11,2\n3,13,4\n")
    bundle = tmp_path / "bundle"
    with quiet():
        res = runner.invoke(
            app, ["train", "--interactions", str(log), "-m", "BPR", "-p", "epochs=2", "-p", "n_factors=4",
                  "--out", str(bundle), "--track", "--tracking-uri", uri],
        )  # fmt: skip
    assert res.exit_code == 0, res.output
    commands = {r.data.tags.get("fusionrec.command"): r for r in runs(uri)}
    assert {"evaluate", "train"} <= set(commands)
    train = commands["train"]
    assert train.data.params["epochs"] == "2" and train.data.tags["fusionrec.model"] == "BPR"
    files = artifact_files(uri, train.info.run_id)
    assert files and all(f.startswith("bundle/") for f in files)
    assert {p.name for p in bundle.rglob("*") if p.is_file()} == {Path(f).name for f in files}
    with quiet():
        assert len(client(uri).get_metric_history(train.info.run_id, "loss")) == 2
