"""fusionrec.tuning (issue 14): Optuna TPE on valid only, the best refitted and tested once, pruning on the
per-epoch valid metric, resumable SQLite studies, search spaces, the `fusionrec tune` command, Ray-parallel trials."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("optuna")

import fusionrec
from fusionrec import tuning
from fusionrec.errors import ConfigError
from fusionrec.evaluation import experiment
from fusionrec.evaluation.experiment import ExperimentConfig, build_dataset_and_split
from fusionrec.models.registry import MODELS, get_model_class

CONFIG: dict[str, Any] = {
    "name": "t",
    "dataset": {"name": "synthetic", "params": {"n_users": 150, "n_items": 90, "seed": 0}},
    "split": {"strategy": "per_user", "params": {"ratios": [0.8, 0.1, 0.1], "seed": 0}},
    "models": ["MostPopular", "EASE", {"name": "ALS", "params": {"binarize": True}}],
    "k": [10],
    "significance": False,
    "tune": {
        "models": ["EASE", "ALS"],
        "space": {"ALS": {"n_factors": ["int", 4, 16], "reg": ["float", 0.01, 1000.0, "log"],
                          "epochs": ["int", 4, 6]}},
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def data() -> tuple[Any, Any]:
    return build_dataset_and_split(ExperimentConfig.from_dict(CONFIG))


def test_every_declared_search_space_is_valid() -> None:
    declared = 0
    for name in MODELS:
        try:
            cls = get_model_class(name)
        except ImportError:
            continue
        space = tuning.search_space(cls)  # names checked against the model's parameters
        declared += bool(space)
        for dim in space.values():
            assert dim.kind in ("int", "float", "categorical")
    assert declared >= 15
    assert set(tuning.search_space("EASE")) == {"reg", "dropout"}
    assert tuning.search_space("ALS")["reg"].log


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (["float", 0.0, 1.0, "log"], "low > 0"),
        (["int", 1.5, 4], "integer bounds"),
        (["floaty", 1, 2], "kind must be"),
        (["float", 2.0, 1.0], "low <= high"),
        (["categorical", []], "categorical"),
        ("float", "must be"),
    ],
)
def test_bad_search_space_entries_are_config_errors(spec: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tuning.parse_space("ALS", {"reg": spec})


def test_unknown_parameter_in_space_has_a_hint() -> None:
    cfg = {**CONFIG, "tune": {"space": {"EASE": {"regg": ["float", 1.0, 10.0]}}}}
    with pytest.raises(ConfigError, match="did you mean 'reg'"):
        tuning.tune(cfg, n_trials=1, storage="memory")


def test_unknown_metric_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown tuning metric 'ndgc@20'"):
        tuning.tune(CONFIG, n_trials=1, storage="memory", metric="ndgc@20")


def test_unknown_tune_key_is_reported_when_the_config_is_read() -> None:
    with pytest.raises(ConfigError, match="unknown tune key"):
        ExperimentConfig.from_dict({**CONFIG, "tune": {"trails": 3}})


def test_a_split_without_valid_part_is_refused(tmp_path: Path) -> None:
    cfg = {**CONFIG, "split": {"strategy": "per_user", "params": {"ratios": [0.8, 0.2], "seed": 0}}}
    with pytest.raises(ConfigError, match="validation part"):
        tuning.tune(cfg, n_trials=1, storage="memory", out=tmp_path)


def test_trials_score_valid_only_and_the_best_is_tested_once(
    tmp_path: Path, data: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset, split = data
    calls: list[tuple[str, str]] = []  # (phase, which part)

    def spy(phase: str, real: Any) -> Any:
        def wrapped(model: Any, train: Any, test: Any, **kw: Any) -> Any:
            part = "valid" if test is split.valid else "test" if test is split.test else "other"
            calls.append((phase, part))
            return real(model, train, test, **kw)

        return wrapped

    monkeypatch.setattr(tuning, "evaluate_ranking", spy("trial", tuning.evaluate_ranking))
    monkeypatch.setattr(experiment, "evaluate_ranking", spy("final", experiment.evaluate_ranking))
    result = tuning.tune(CONFIG, n_trials=5, storage="memory", out=tmp_path, dataset=dataset, split=split)

    trial_parts = {p for phase, p in calls if phase == "trial"}
    assert trial_parts == {"valid"}  # the test part is never read during the search
    finals = [p for phase, p in calls if phase == "final"]
    assert finals == ["test"] * 3  # MostPopular, EASE, ALS: once each, after the search
    assert calls.index(("final", "test")) > max(i for i, c in enumerate(calls) if c[0] == "trial")

    for t in result.models:
        complete = [r["value"] for r in t.trials if r["state"] == "COMPLETE"]
        assert t.best_value == pytest.approx(max(complete))
        assert t.test["NDCG@20"] > 0  # the tuning metric is reported on test even though k = [10]
    als = next(t for t in result.models if t.label == "ALS")
    assert als.best_params["binarize"] is True  # fixed params are kept
    refit = next(m for m in result.experiment.models if m.label == "ALS")
    assert refit.model.get_params()["reg"] == als.best_params["reg"]

    doc = json.loads((tmp_path / "tuning.json").read_text())
    assert doc["selected_on"] == "valid" and doc["metric"] == "NDCG@20"
    assert [m["label"] for m in doc["models"]] == ["EASE", "ALS"]
    assert len(doc["models"][0]["trials"]) == 5 and "best_params" in doc["models"][0]
    assert (tmp_path / "report.html").exists() and (tmp_path / "results.json").exists()


def test_the_same_seed_gives_the_same_study(tmp_path: Path, data: tuple[Any, Any]) -> None:
    dataset, split = data
    cfg = {**CONFIG, "tune": {"models": ["EASE"]}}
    a = tuning.tune(cfg, n_trials=4, storage="memory", out=tmp_path / "a", dataset=dataset, split=split)
    b = tuning.tune(cfg, n_trials=4, storage="memory", out=tmp_path / "b", dataset=dataset, split=split)
    assert [r["params"] for r in a.models[0].trials] == [r["params"] for r in b.models[0].trials]


def test_a_sqlite_study_is_resumed(tmp_path: Path, data: tuple[Any, Any]) -> None:
    dataset, split = data
    cfg = {**CONFIG, "tune": {"models": ["EASE"]}}
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = tuning.tune(cfg, n_trials=3, storage=storage, out=tmp_path, dataset=dataset, split=split)
    second = tuning.tune(cfg, n_trials=5, storage=storage, out=tmp_path, dataset=dataset, split=split)
    t1, t2 = first.models[0].trials, second.models[0].trials
    assert len(t1) == 3 and len(t2) == 5
    assert [r["params"] for r in t2[:3]] == [r["params"] for r in t1]  # the first three are the same trials
    assert len({r["params"]["reg"] for r in t2}) == 5  # resumed with new points, not the same seeds again
    again = tuning.tune(cfg, n_trials=5, storage=storage, out=tmp_path, dataset=dataset, split=split)
    assert len(again.models[0].trials) == 5  # already complete: nothing more to run


def test_unpromising_trials_are_pruned_per_epoch(tmp_path: Path, data: tuple[Any, Any]) -> None:
    dataset, split = data
    cfg = {**CONFIG, "tune": {**CONFIG["tune"], "models": ["ALS"]}}
    result = tuning.tune(cfg, n_trials=12, storage="memory", out=tmp_path, dataset=dataset, split=split)
    als = result.models[0]
    assert als.n_pruned >= 1
    pruned = [r for r in als.trials if r["state"] == "PRUNED"]
    # pruned trials stopped before their last iteration and reported the valid metric per epoch
    assert all(len(r["intermediate"]) < r["params"]["epochs"] for r in pruned)
    complete = [r for r in als.trials if r["state"] == "COMPLETE"]
    assert all(len(r["intermediate"]) == r["params"]["epochs"] for r in complete)
    no_prune = tuning.tune(cfg, n_trials=6, storage="memory", out=tmp_path, dataset=dataset, split=split, prune=False)
    assert no_prune.models[0].n_pruned == 0


def test_a_failing_configuration_fails_its_trial_only(tmp_path: Path, data: tuple[Any, Any]) -> None:
    dataset, split = data
    # the Cholesky solver refuses reg 0: those trials fail, the others go on
    space = {"ALS": {"solver": ["categorical", ["cg", "cholesky"]], "reg": ["categorical", [0.0, 1.0]]}}
    cfg = {**CONFIG, "tune": {"models": ["ALS"], "space": space}}
    result = tuning.tune(cfg, n_trials=6, storage="memory", out=tmp_path, dataset=dataset, split=split, prune=False)
    states = {r["state"] for r in result.models[0].trials}
    failed = [r for r in result.models[0].trials if r["state"] == "FAIL"]
    assert "COMPLETE" in states
    assert all("Cholesky" in (r["error"] or "") for r in failed)


def cli() -> tuple[Any, Any]:
    """typer's CliRunner and the app (click 8.5 deprecates names typer 0.20 imports: not ours to fail on)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from typer.testing import CliRunner

        from fusionrec.cli.main import app
    return CliRunner(), app


def test_cli_tune_writes_the_results(tmp_path: Path) -> None:
    runner, app = cli()
    cfg = tmp_path / "tune.json"
    cfg.write_text(json.dumps({**CONFIG, "tune": {"models": ["EASE"]}}))
    out = tmp_path / "out"
    res = runner.invoke(app, ["tune", str(cfg), "--trials", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "tuned on valid" in res.output and "EASE" in res.output
    doc = json.loads((out / "tuning.json").read_text())
    assert doc["models"][0]["n_trials"] == 3
    assert (out / "tuning.db").exists()  # the default storage, resumable


@pytest.mark.slow  # starting a local Ray cluster takes ~20-30 s on 2 shared cores
def test_trials_run_in_parallel_over_a_local_ray_cluster(tmp_path: Path, data: tuple[Any, Any]) -> None:
    """Ray trials really run at the same time: each trial waits (up to 30 s) until a trial of another worker process
    has started, and only then scores 1; run one after the other, the first would time out and score 0.  Then tune()
    over the same cluster completes every trial and refits the best."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'fusionrec[distributed]')")
    import optuna

    from fusionrec.distributed import init_ray, shutdown_ray

    folder = tmp_path / "started"
    folder.mkdir()

    def meet(trial: Any, folder: str = str(folder)) -> float:  # runs in a Ray worker (pickled by value)
        import os
        import time
        from pathlib import Path

        here, me = Path(folder), str(os.getpid())
        (here / f"{me}-{trial.number}").touch()
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            if {p.name.split("-")[0] for p in here.iterdir()} - {me}:
                return 1.0  # a trial in another process started while this one runs
            time.sleep(0.05)
        return 0.0

    dataset, split = data
    cfg = {**CONFIG, "tune": {"models": ["EASE"]}}
    storage = f"sqlite:///{tmp_path / 'ray.db'}"
    init_ray("local", num_cpus=2)
    try:
        optuna.create_study(study_name="meet", storage=storage, direction="maximize")  # as tune() does first
        tuning._run_ray("meet", storage, meet, 2, None, 2, 0, "local", False)
        result = tuning.tune(
            cfg, n_trials=4, storage=storage, n_jobs=2, ray_address="local", out=tmp_path, dataset=dataset, split=split
        )
    finally:
        shutdown_ray()
    met = optuna.load_study(study_name="meet", storage=storage).trials
    assert [t.value for t in met] == [1.0, 1.0]  # both overlapped with the other worker's trial
    assert len({p.name.split("-")[0] for p in folder.iterdir()}) == 2  # two worker processes
    trials = result.models[0].trials
    assert len(trials) == 4 and all(r["state"] == "COMPLETE" for r in trials)
    assert result.models[0].test["NDCG@20"] > 0


def test_parallel_threads_finish_the_same_number_of_trials(tmp_path: Path, data: tuple[Any, Any]) -> None:
    dataset, split = data
    cfg = {**CONFIG, "tune": {"models": ["EASE"]}}
    with fusionrec.progress_enabled():  # bars are switched off for threaded trials (one terminal)
        result = tuning.tune(cfg, n_trials=4, n_jobs=2, storage="memory", out=tmp_path, dataset=dataset, split=split)
    assert len(result.models[0].trials) == 4
    assert {r["state"] for r in result.models[0].trials} == {"COMPLETE"}


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("ALS", {"n_factors": 4, "epochs": 3}),
        ("BPR", {"n_factors": 4, "epochs": 3}),
        ("VBPR", {"n_factors": 4, "content_factors": 2, "epochs": 3}),
    ],
)
def test_the_epoch_hook_scores_the_model_after_every_epoch(name: str, params: dict[str, Any], data: Any) -> None:
    import numpy as np

    from fusionrec.data import SideInfo
    from fusionrec.models import make_model
    from fusionrec.models.base import epoch_callback

    _dataset, split = data
    rng = np.random.default_rng(0)
    side = SideInfo(item_features={"f": rng.random((split.train.n_items, 6), dtype=np.float32)})
    seen: list[tuple[int, float]] = []

    def on_epoch(model: Any, epoch: int, _loss: float | None) -> None:
        seen.append((epoch, float(np.abs(model.score(np.arange(5))).sum())))

    with epoch_callback(on_epoch):
        make_model(name, **params).fit(split.train, side)
    epochs = params["epochs"]
    assert [e for e, _ in seen] == list(range(epochs))
    assert all(np.isfinite(s) and s > 0 for _, s in seen)  # scorable with its current parameters
    seen.clear()
    make_model(name, **params).fit(split.train, side)
    assert seen == []  # outside the block the hook does nothing


def test_a_journal_file_study_is_resumed_too(tmp_path: Path, data: tuple[Any, Any]) -> None:
    dataset, split = data
    cfg = {**CONFIG, "tune": {"models": ["EASE"]}}
    storage = f"journal:{tmp_path / 'study.log'}"
    tuning.tune(cfg, n_trials=2, storage=storage, out=tmp_path, dataset=dataset, split=split)
    again = tuning.tune(cfg, n_trials=3, storage=storage, out=tmp_path, dataset=dataset, split=split)
    assert len(again.models[0].trials) == 3 and again.storage.startswith("journal:")
    with pytest.raises(ConfigError, match="not understood"):
        tuning.make_storage("tuning", tmp_path)
    assert tuning.make_storage(str(tmp_path / "t.db"), tmp_path)[1] == f"sqlite:///{tmp_path / 't.db'}"


def test_a_model_reading_raw_texts_is_tuned_with_them(tmp_path: Path, data: tuple[Any, Any]) -> None:
    pytest.importorskip("torch")
    dataset, split = data
    fixed = {"n_factors": 4, "hidden": 8, "epochs": 1, "text_tower": "cnn", "text_len": 8, "seed": 0}
    cfg = {
        **CONFIG,
        "models": [{"name": "DeepFusion", "params": fixed}],
        "tune": {"models": ["DeepFusion"], "space": {"DeepFusion": {"lr": ["float", 1e-3, 1e-2, "log"]}}},
    }
    result = tuning.tune(cfg, n_trials=2, storage="memory", out=tmp_path, dataset=dataset, split=split)
    assert [r["state"] for r in result.models[0].trials] == ["COMPLETE", "COMPLETE"]
    assert result.models[0].test  # refitted with the texts and tested
