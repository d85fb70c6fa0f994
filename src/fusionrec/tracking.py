"""Experiment tracking with MLflow (``--track`` on ``fusionrec evaluate``, ``tune`` and ``train``).

What is logged:

* ``evaluate`` (:func:`log_experiment`): one run for the experiment (config facts as parameters, every model's
  metrics as ``<label>/<metric>``, ``results.json`` and ``report.html`` as artifacts) and a nested run per model
  (its hyper-parameters, metrics, fit/eval seconds and its per-epoch curves: ``loss_history_``,
  ``valid_history_`` where the model records them -- ALS with ``track_loss=True``, BPR, VBPR, HybridMF,
  DeepFusion's validation metric);
* ``tune`` (:func:`log_tuning`): a run for the study, a nested run per tuned model (best parameters, best valid
  score, test figures of the refit, the saved best model) and one nested run per trial (its parameters, valid
  score and the per-epoch valid curve that pruning used); ``tuning.json`` and the report as artifacts;
* ``train`` (:func:`log_bundle`): the model's parameters, its curves and the whole serving bundle as artifacts.

Where: by default a local store in ``./mlruns`` of the working directory -- ``./mlruns/mlflow.db`` (SQLite) with
the artifacts in ``./mlruns/artifacts``; MLflow 3 refuses its plain file store (``./mlruns`` folders) unless
``MLFLOW_ALLOW_FILE_STORE=true``, and a SQLite file is as local and server-free.  Browse it with
``mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db``.  ``tracking_uri`` (``--tracking-uri``) sends the
runs elsewhere: ``http://host:5000``, ``sqlite:///path.db`` (new experiments keep their artifacts in ``artifacts/``
beside the database), ``databricks``, or a folder (the file store).

MLflow is imported only inside this module's functions (``pip install 'fusionrec[track]'``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fusionrec.errors import ConfigError

if TYPE_CHECKING:
    from fusionrec.evaluation.experiment import ExperimentResult
    from fusionrec.models.base import Recommender

__all__ = ["DEFAULT_EXPERIMENT", "default_tracking_uri", "log_bundle", "log_experiment", "log_tuning"]


class TuningRecord(Protocol):
    """What :func:`log_tuning` reads of a :class:`fusionrec.tuning.TuningResult` (typed here so that tracking, which
    tuning calls, does not import tuning back)."""

    metric: str
    storage: str
    models: list[Any]
    experiment: ExperimentResult
    paths: dict[str, Path]
    seconds: float


#: the MLflow experiment runs go to unless told otherwise
DEFAULT_EXPERIMENT = "fusionrec"
_INSTALL_HINT = "tracking needs MLflow: pip install 'fusionrec[track]' (mlflow>=2.12)"


def default_tracking_uri(root: str | Path = "mlruns") -> tuple[str, str]:
    """The default local store: ``(sqlite:///<root>/mlflow.db, file://<root>/artifacts)`` (absolute paths)."""
    base = Path(root).expanduser().resolve()
    return f"sqlite:///{base / 'mlflow.db'}", (base / "artifacts").as_uri()


def _resolve(tracking_uri: str | Path | None) -> tuple[str, str | None]:
    if tracking_uri is None or str(tracking_uri).strip() == "":
        base = Path("mlruns")
        base.mkdir(parents=True, exist_ok=True)
        return default_tracking_uri(base)
    uri = str(tracking_uri).strip()
    if "://" not in uri and uri != "databricks":
        path = Path(uri).expanduser().resolve()
        if path.suffix == ".db":  # a SQLite file given as a path
            path.parent.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{path}", (path.parent / "artifacts").as_uri()
        return path.as_uri(), None  # a folder: MLflow's file store
    if uri.startswith("sqlite:///"):  # artifacts beside the database, not in ./mlruns of whatever the cwd is
        return uri, (Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent / "artifacts").as_uri()
    return uri, None


@contextlib.contextmanager
def _mlflow(tracking_uri: str | Path | None, experiment: str | None) -> Iterator[Any]:
    """MLflow, pointed at the store and the experiment, with its deprecation chatter silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # third-party deprecations (SQLAlchemy, pydantic) are not ours to fail on
        try:
            import mlflow
        except ImportError as exc:  # pragma: no cover - exercised only without mlflow
            raise ConfigError(_INSTALL_HINT) from exc
        logging.getLogger("alembic").setLevel(logging.WARNING)
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
        uri, artifacts = _resolve(tracking_uri)
        name = experiment or DEFAULT_EXPERIMENT
        try:
            mlflow.set_tracking_uri(uri)
            if artifacts is not None and mlflow.get_experiment_by_name(name) is None:
                mlflow.create_experiment(name, artifact_location=artifacts)
            mlflow.set_experiment(name)
        except Exception as exc:  # MlflowException and the store's own errors
            hint = " (MLflow 3 refuses a folder store unless MLFLOW_ALLOW_FILE_STORE=true)" if "file:" in uri else ""
            raise ConfigError(f"cannot use the MLflow tracking store {uri!r}{hint}: {exc}") from exc
        yield mlflow


def _key(name: str) -> str:
    """An MLflow metric/param key: ``NDCG@20`` -> ``NDCG_at_20`` (only letters, digits, ``_-. /``)."""
    return re.sub(r"[^\w\-. /]", "_", str(name).replace("@", "_at_"))


def _value(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v, default=str)
    return text if len(text) <= 6000 else text[:5997] + "..."


def _params(mlflow: Any, params: Mapping[str, Any], prefix: str = "") -> None:
    if params:
        mlflow.log_params({_key(prefix + k): _value(v) for k, v in params.items()})


def _metrics(mlflow: Any, metrics: Mapping[str, Any], prefix: str = "", step: int | None = None) -> None:
    clean = {}
    for k, v in metrics.items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            clean[_key(prefix + k)] = f
    if clean:
        mlflow.log_metrics(clean, step=step)


def _curves(mlflow: Any, model: Recommender) -> None:
    """Per-epoch curves the model kept (:meth:`~fusionrec.models.base.Recommender.training_curves`), one step per
    epoch."""
    for name, arr in model.training_curves().items():
        for step, v in enumerate(arr.tolist()):
            if math.isfinite(v):
                mlflow.log_metric(name, v, step=step)


def _artifacts(mlflow: Any, paths: Mapping[str, Any] | None) -> None:
    for p in (paths or {}).values():
        path = Path(p)
        if path.is_dir():
            mlflow.log_artifacts(str(path), artifact_path=path.name)
        elif path.is_file():
            mlflow.log_artifact(str(path))


def log_experiment(
    result: ExperimentResult,
    paths: Mapping[str, Any] | None = None,
    *,
    tracking_uri: str | Path | None = None,
    experiment: str | None = None,
    command: str = "evaluate",
) -> str:
    """Log an experiment (see the module docstring) and return the id of its MLflow run."""
    cfg = result.config
    with _mlflow(tracking_uri, experiment) as mlflow, mlflow.start_run(run_name=cfg.name) as run:
        mlflow.set_tags({"fusionrec.command": command})
        _params(
            mlflow,
            {
                "config.name": cfg.name,
                "dataset": cfg.dataset,
                "split": cfg.split,
                "k": list(cfg.k),
                "metrics": list(cfg.metrics),
                "models": [m.display for m in cfg.models],
                "split.sizes": result.split.summary(),
            },
        )
        for m in result.models:
            row = {**m.ranking.metrics, **(m.ratings or {}), "fit_s": m.fit_seconds, "eval_s": m.ranking.seconds}
            row.pop("n", None)
            _metrics(mlflow, row, prefix=f"{m.label}/")
            with mlflow.start_run(run_name=m.label, nested=True):
                mlflow.set_tags({"fusionrec.model": type(m.model).__name__, "fusionrec.label": m.label})
                _params(mlflow, m.model.get_params())
                _metrics(mlflow, row)
                _curves(mlflow, m.model)
        if result.failed:
            mlflow.set_tags({_key(f"failed.{k}"): v[:500] for k, v in result.failed.items()})
        _artifacts(mlflow, paths)
        return str(run.info.run_id)


def log_tuning(result: TuningRecord, *, tracking_uri: str | Path | None = None, experiment: str | None = None) -> str:
    """Log a tuning (see the module docstring) and return the id of its MLflow run."""
    exp = result.experiment
    with _mlflow(tracking_uri, experiment) as mlflow, mlflow.start_run(run_name=f"tune: {exp.config.name}") as run:
        mlflow.set_tags({"fusionrec.command": "tune"})
        _params(
            mlflow,
            {
                "metric": result.metric,
                "selected_on": "valid",
                "storage": result.storage,
                "dataset": exp.config.dataset,
                "split": exp.config.split,
                "tuned": [t.label for t in result.models],
            },
        )
        _metrics(mlflow, {"seconds": result.seconds})
        for m in exp.models:  # the test figures of every model of the final (refitted) experiment
            _metrics(mlflow, {**m.ranking.metrics, "fit_s": m.fit_seconds}, prefix=f"{m.label}/test/")
        fitted = {m.label: m.model for m in exp.models}
        for t in result.models:
            _metrics(mlflow, {"best_valid": t.best_value}, prefix=f"{t.label}/")
            with mlflow.start_run(run_name=f"{t.label} (best)", nested=True):
                mlflow.set_tags(
                    {"fusionrec.model": t.name, "fusionrec.label": t.label, "fusionrec.study": t.study_name}
                )
                _params(mlflow, t.best_params)
                _metrics(
                    mlflow,
                    {
                        f"valid_{result.metric}": t.best_value,
                        "n_trials": len(t.trials),
                        "n_pruned": t.n_pruned,
                        **{f"test_{k}": v for k, v in t.test.items()},
                    },
                )
                model = fitted.get(t.label)
                if model is not None:
                    _curves(mlflow, model)
                    with tempfile.TemporaryDirectory() as tmp:
                        try:
                            saved = model.save(Path(tmp) / "model")
                        except Exception:  # a model that cannot be saved is still tracked
                            saved = None
                        if saved is not None:
                            mlflow.log_artifacts(str(saved), artifact_path="model")
            for trial in t.trials:
                with mlflow.start_run(run_name=f"{t.label} trial {trial['number']}", nested=True):
                    mlflow.set_tags({"fusionrec.label": t.label, "trial.state": trial["state"]})
                    _params(mlflow, trial["params"])
                    if trial["value"] is not None:
                        _metrics(mlflow, {f"valid_{result.metric}": trial["value"]})
                    for step, v in trial["intermediate"].items():
                        if v is not None:
                            mlflow.log_metric(_key(f"epoch_valid_{result.metric}"), float(v), step=int(step))
        _artifacts(mlflow, result.paths)
        return str(run.info.run_id)


def log_bundle(
    bundle: str | Path,
    *,
    model: Any = None,
    params: Mapping[str, Any] | None = None,
    source: str | None = None,
    tracking_uri: str | Path | None = None,
    experiment: str | None = None,
) -> str:
    """Log a trained serving bundle (``fusionrec train``): parameters, curves and the bundle folder."""
    path = Path(bundle)
    if not path.is_dir():
        raise ConfigError(f"bundle {path} does not exist; train it first (fusionrec train ...)")
    with _mlflow(tracking_uri, experiment) as mlflow, mlflow.start_run(run_name=f"train: {path.name}") as run:
        mlflow.set_tags({"fusionrec.command": "train", **({"fusionrec.source": source} if source else {})})
        if model is not None:
            mlflow.set_tags({"fusionrec.model": type(model).__name__})
            _params(mlflow, model.get_params())
            _curves(mlflow, model)
            _metrics(mlflow, {"n_users": model.n_users_, "n_items": model.n_items_})
        elif params:
            _params(mlflow, params)
        mlflow.log_artifacts(str(path), artifact_path="bundle")
        return str(run.info.run_id)
