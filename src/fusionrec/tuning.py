"""Hyper-parameter tuning with Optuna: TPE, pruning on the validation metric, resumable storage.

:func:`tune` (``fusionrec tune CONFIG``) tunes every model of an experiment config on the config's split:

* each trial fits on **train** and scores the configured metric (``ndcg@20`` by default) on **valid** only; the
  split must have a validation part, and the test part is never read during the trials;
* the sampler is Optuna's TPE with a fixed seed (``seed``, shifted by the number of trials already in the study so
  that a resumed study does not repeat its first random points);
* pruning: the iterative models with the epoch hook (ALS, BPR, VBPR; :func:`fusionrec.models.base.epoch_callback`) report
  the validation metric after every epoch and a :class:`optuna.pruners.MedianPruner` stops trials that fall below
  the median of earlier trials at the same epoch; the other models report once, at the end of their fit, so
  they are never pruned;
* storage: ``sqlite:///path.db`` (an :class:`optuna.storages.RDBStorage`, the default is ``tuning.db`` in the
  output folder), ``journal:path.log`` (a :class:`optuna.storages.JournalStorage` over a locked file, the safer
  choice for many processes) or ``memory``; ``load_if_exists`` makes a second call continue the same study.
  ``n_trials`` is the number of finished trials the study should hold: a rerun after an interruption runs
  only the missing ones;
* then every model is refitted on train with its best parameters and evaluated on **test** once
  (:func:`fusionrec.evaluation.experiment.run_experiment`); ``tuning.json`` (every trial, the best parameters, the
  best valid score and the test score of the best) is written next to the report (``results.json``,
  ``report.html``).

Search spaces are declared per model class as ``_search_space`` (read through :func:`search_space`), e.g.
``{"reg": ("float", 1.0, 1e4, "log"), "k": ("int", 10, 500), "loss": ("categorical", ["warp", "bpr"])}``.
A config's ``tune.space`` replaces them per model label (``{"ALS": {"reg": ["float", 0.01, 10,
"log"]}}``); a parameter given in the model's ``params`` is held fixed and left out of the declared space.

Parallel trials: ``n_jobs`` threads in this process, or, with ``ray_address``, ``n_jobs`` Ray tasks (default: the
cluster's CPUs), each running ``study.optimize`` against the shared storage (a file every worker can reach: a
SQLite or journal file on this machine or on a shared disk).

Optuna is imported only inside the functions here (``pip install 'fusionrec[tune]'``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fusionrec.errors import ConfigError, FusionRecError
from fusionrec.evaluation.protocol import evaluate_ranking

if TYPE_CHECKING:
    from fusionrec.data.dataset import Dataset
    from fusionrec.data.split import Split
    from fusionrec.evaluation.experiment import ExperimentConfig, ExperimentResult, ModelSpec
    from fusionrec.models.base import Recommender, SideInfo

__all__ = ["Dimension", "ModelTuning", "TuningResult", "make_storage", "parse_space", "search_space", "tune"]

_INSTALL_HINT = "tuning needs Optuna: pip install 'fusionrec[tune]' (optuna>=4)"
#: exceptions of a trial that mark it failed (a bad parameter combination) instead of stopping the study
_TRIAL_ERRORS: tuple[type[BaseException], ...] = (FusionRecError, ValueError, NotImplementedError)


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:  # pragma: no cover - exercised only without optuna
        raise ConfigError(_INSTALL_HINT) from exc
    return optuna


# ---------------------------------------------------------------------------------------------- search spaces
@dataclass(frozen=True)
class Dimension:
    """One tuned hyper-parameter: ``kind`` ``"int"``/``"float"`` in ``[low, high]`` (``log`` scale), or
    ``"categorical"`` over ``choices``."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """The value an Optuna trial suggests for this dimension."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low or 0), int(self.high or 0), log=self.log)
        return trial.suggest_float(self.name, float(self.low or 0.0), float(self.high or 0.0), log=self.log)

    def to_json(self) -> list[Any]:
        """The spec in the config format: ``[kind, low, high(, "log")]`` or ``["categorical", [choices]]``."""
        if self.kind == "categorical":
            return ["categorical", list(self.choices)]
        return [self.kind, self.low, self.high, *(["log"] if self.log else [])]


def _dimension(owner: str, name: str, spec: Any) -> Dimension:
    where = f"{owner}: search space entry {name!r}"
    if isinstance(spec, Dimension):
        return spec
    if isinstance(spec, str) or not isinstance(spec, Sequence) or not spec:
        raise ConfigError(
            f"{where} must be [kind, low, high] or [kind, low, high, 'log'] (kind int or float) or "
            f"['categorical', [choices]]; got {spec!r}"
        )
    kind = str(spec[0]).lower()
    if kind == "categorical":
        if len(spec) != 2 or isinstance(spec[1], str) or not isinstance(spec[1], Sequence) or not spec[1]:
            raise ConfigError(
                f"{where}: a categorical entry is ['categorical', [choice, ...]] with choices; got {spec!r}"
            )
        return Dimension(name, "categorical", choices=tuple(spec[1]))
    if kind not in ("int", "float"):
        raise ConfigError(f"{where}: kind must be 'int', 'float' or 'categorical', got {spec[0]!r}")
    if len(spec) not in (3, 4) or (len(spec) == 4 and spec[3] != "log"):
        raise ConfigError(f"{where}: write [{kind!r}, low, high] or [{kind!r}, low, high, 'log'], got {spec!r}")
    low, high = spec[1], spec[2]
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high))
    if not numbers or low > high:
        raise ConfigError(f"{where}: low and high must be finite numbers with low <= high, got {low!r}, {high!r}")
    if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise ConfigError(f"{where}: an int range needs integer bounds, got {low!r}, {high!r}")
    log = len(spec) == 4
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0, got {low!r} (drop 'log' or raise low)")
    return Dimension(name, kind, float(low) if kind == "float" else int(low),
                     float(high) if kind == "float" else int(high), log)  # fmt: skip


def parse_space(owner: str, raw: Mapping[str, Any], params: Sequence[str] | None = None) -> dict[str, Dimension]:
    """Check a search space mapping ``name -> spec`` and return its :class:`Dimension` objects.

    ``params`` (the model's parameter names) makes an unknown name a :class:`ConfigError` with a did-you-mean.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{owner}: a search space is a mapping of parameter name -> range, got {raw!r}")
    if params is not None:
        from fusionrec.models._params import check_names

        check_names(owner, list(raw), params)
    return {str(name): _dimension(owner, str(name), spec) for name, spec in raw.items()}


def search_space(model: str | type[Recommender]) -> dict[str, Dimension]:
    """The declared search space of a registered model name or model class
    (:meth:`~fusionrec.models.base.Recommender.search_space`).

    Empty for a model without one (give ``tune.space`` in the config to tune it).
    """
    from fusionrec.models.registry import get_model_class

    cls: type[Recommender] = get_model_class(model) if isinstance(model, str) else model
    return parse_space(cls.__name__, cls.search_space(), cls.param_names())


# ---------------------------------------------------------------------------------------------- storage
def make_storage(storage: str | None, out: Path) -> tuple[Any, str]:
    """An Optuna storage from a spec and its URL-like description (``None``: ``sqlite:///OUT/tuning.db``).

    ``sqlite:///path.db``, a ``path.db`` (or any SQLAlchemy URL) -> :class:`optuna.storages.RDBStorage`;
    ``journal:path`` or a path ending in ``.log`` -> :class:`optuna.storages.JournalStorage` over a file with a
    lock; ``memory`` -> in-memory (not resumable).
    """
    optuna = _optuna()
    if storage is None:
        out.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{(out / 'tuning.db').resolve()}"
    spec = str(storage).strip()
    if spec == "memory":
        return optuna.storages.InMemoryStorage(), spec
    if spec.startswith("journal:") or spec.endswith(".log"):
        path = Path(spec.removeprefix("journal:")).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
        return optuna.storages.JournalStorage(backend), f"journal:{path}"
    if "://" not in spec and spec.endswith((".db", ".sqlite", ".sqlite3")):  # a SQLite file given as a path
        spec = f"sqlite:///{Path(spec).expanduser().resolve()}"
    if "://" not in spec:
        raise ConfigError(
            f"storage {storage!r} is not understood; use sqlite:///path/to/tuning.db, journal:path/to/tuning.log "
            "or memory"
        )
    if spec.startswith("sqlite:///"):
        Path(spec.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # many processes may write one SQLite file: wait for its lock instead of failing at once
    kwargs = {"connect_args": {"timeout": 60}} if spec.startswith("sqlite") else {}
    try:
        return optuna.storages.RDBStorage(spec, engine_kwargs=kwargs), spec
    except Exception as exc:  # SQLAlchemy's errors: a bad URL, an unreachable server
        raise ConfigError(f"cannot open the tuning storage {spec!r}: {exc}") from exc


# ---------------------------------------------------------------------------------------------- results
@dataclass
class ModelTuning:
    """The tuning of one model: its study, trials, best parameters and the test figures of the refit."""

    label: str
    name: str
    study_name: str
    space: dict[str, Dimension]
    fixed: dict[str, Any]
    best_params: dict[str, Any]
    best_value: float | None
    trials: list[dict[str, Any]]
    test: dict[str, float] = field(default_factory=dict)

    @property
    def n_complete(self) -> int:
        return sum(t["state"] == "COMPLETE" for t in self.trials)

    @property
    def n_pruned(self) -> int:
        return sum(t["state"] == "PRUNED" for t in self.trials)

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "model": self.name,
            "study": self.study_name,
            "space": {k: d.to_json() for k, d in self.space.items()},
            "fixed_params": self.fixed,
            "best_params": self.best_params,
            "best_valid": self.best_value,
            "test": self.test,
            "n_trials": len(self.trials),
            "n_complete": self.n_complete,
            "n_pruned": self.n_pruned,
            "trials": self.trials,
        }


@dataclass
class TuningResult:
    """What :func:`tune` did: one :class:`ModelTuning` per tuned model and the test experiment of the best."""

    #: the validation metric as named in the results (``"NDCG@20"``)
    metric: str
    storage: str
    models: list[ModelTuning]
    experiment: ExperimentResult
    paths: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.experiment.config.name,
            "metric": self.metric,
            "selected_on": "valid",
            "storage": self.storage,
            "seconds": self.seconds,
            "models": [m.to_json() for m in self.models],
        }


# ---------------------------------------------------------------------------------------------- helpers
def _metric_key(metric: str, config: ExperimentConfig) -> tuple[str, str, int]:
    """``"ndcg@20"`` -> (``"NDCG@20"``, ranking metric ``"ndcg"``, 20), checked against the known metrics."""
    from fusionrec.evaluation import metrics as M

    name, sep, k = str(metric).strip().partition("@")
    key = name.strip().lower()
    if key not in M.RANKING:
        raise ConfigError(
            f"unknown tuning metric {metric!r}; use a ranking metric such as ndcg@20 ({sorted(M.RANKING)})"
        )
    try:
        kk = int(k) if sep else max(config.k)
    except ValueError:
        raise ConfigError(f"tuning metric {metric!r}: the cut-off after '@' must be an integer (ndcg@20)") from None
    if kk < 1:
        raise ConfigError(f"tuning metric {metric!r}: the cut-off must be positive")
    return f"{M.RANKING[key]}@{kk}", key, kk


def _valid_scorer(split: Split, metric: str, k: int) -> Callable[[Recommender], float]:
    """Score a fitted model on the validation part (train masked): the tuning objective."""
    if split.valid is None or split.valid.nnz == 0:
        raise ConfigError(
            "tuning selects on a validation part, and this split has none; use a three-way split such as "
            "ratios [0.8, 0.1, 0.1] (per_user / random) or a benchmark split with a valid part"
        )
    valid = split.valid
    candidates = None
    if split.cold == "items" and "valid_items" in split.meta:
        candidates = np.asarray(split.meta["valid_items"])

    def score(model: Recommender) -> float:
        result = evaluate_ranking(
            model, split.train, valid, k=(k,), metrics=(metric,), exclude=[split.train], candidates=candidates,
            cold_users=split.cold == "users",
        )  # fmt: skip
        return float(next(iter(result.metrics.values())))

    return score


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _trial_rows(study: Any) -> list[dict[str, Any]]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "value": _jsonable(t.value),
                "params": {k: _jsonable(v) for k, v in t.params.items()},
                "intermediate": {str(s): _jsonable(v) for s, v in sorted(t.intermediate_values.items())},
                "seconds": None if t.duration is None else t.duration.total_seconds(),
                "error": t.user_attrs.get("error"),
            }
        )
    return rows


def _n_finished(study: Any) -> int:
    optuna = _optuna()
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def _make_objective(
    spec: ModelSpec, space: dict[str, Dimension], fixed: dict[str, Any], split: Split, side: SideInfo | None,
    metric: str, k: int, prune: bool, raw: dict[str, Any] | None = None,
) -> Callable[[Any], float]:  # fmt: skip
    """The Optuna objective of one model: suggest, fit on train, score on valid (pruning after each epoch)."""
    from fusionrec.evaluation.experiment import fit_model
    from fusionrec.models.base import epoch_callback
    from fusionrec.models.registry import make_model

    score = _valid_scorer(split, metric, k)

    def objective(trial: Any) -> float:
        optuna = _optuna()
        params = {**fixed, **{name: dim.suggest(trial) for name, dim in space.items()}}
        try:
            model = make_model(spec.name, **params)
        except ConfigError as exc:
            trial.set_user_attr("error", str(exc))
            raise

        def on_epoch(m: Any, epoch: int, _loss: float | None) -> None:
            value = score(m)
            trial.report(value, epoch)
            if prune and trial.should_prune():
                raise optuna.TrialPruned(f"valid {value:.4f} below the median at epoch {epoch}")

        try:
            with epoch_callback(on_epoch):
                fit_model(model, split.train, side=side, valid=split.valid, raw=raw)
        except _TRIAL_ERRORS as exc:
            trial.set_user_attr("error", str(exc))
            raise
        return score(model)

    return objective


def _tuned_specs(config: ExperimentConfig, names: Sequence[str] | None) -> list[ModelSpec]:
    labels = [m.display for m in config.models]
    wanted = list(names) if names is not None else config.tune.get("models")
    if wanted is None:
        return list(config.models)
    if isinstance(wanted, str) or not isinstance(wanted, Sequence):
        raise ConfigError(f"tune models must be a list of model labels, got {wanted!r}")
    from fusionrec.evaluation.experiment import _did_you_mean

    for w in wanted:
        if w not in labels:
            raise ConfigError(
                f"tune models: no model labelled {w!r} in the config{_did_you_mean(w, labels)}; labels: {labels}"
            )
    return [m for m in config.models if m.display in wanted]


def _space_for(spec: ModelSpec, config: ExperimentConfig) -> tuple[dict[str, Dimension], dict[str, Any]]:
    """(space, fixed params) of one model: the config's ``tune.space[label]`` or the declared space minus the
    parameters the config fixes."""
    from fusionrec.models.registry import get_model_class

    cls = get_model_class(spec.name)
    overrides = config.tune.get("space", {})
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"tune space must map model labels to search spaces, got {overrides!r}")
    owner = f"{spec.display} ({spec.name})"
    if spec.display in overrides or spec.name in overrides:
        raw = overrides.get(spec.display, overrides.get(spec.name))
        space = parse_space(owner, raw, cls.param_names())
    else:
        space = {k: d for k, d in search_space(cls).items() if k not in spec.params}
    fixed = {k: v for k, v in spec.params.items() if k not in space}
    return space, fixed


def _no_space(spec: ModelSpec) -> ConfigError:
    return ConfigError(
        f"{spec.display} ({spec.name}) has no search space to tune: give one in the config, e.g. "
        f'tune.space.{spec.display} = {{reg = ["float", 1.0, 1000.0, "log"]}}, or leave it out of tune.models'
    )


def _run_ray(
    study_name: str, storage_url: str, objective: Callable[[Any], float], n_trials: int, timeout: float | None,
    n_workers: int | None, seed: int, ray_address: str, prune: bool,
) -> None:  # fmt: skip
    """``n_workers`` Ray tasks, each running ``study.optimize`` on its share of the trials against the storage."""
    try:
        from fusionrec.distributed import init_ray

        init_ray(ray_address)
    except ImportError:  # pragma: no cover - without the distributed package
        import ray

        if not ray.is_initialized():
            ray.init(address=None if ray_address in ("local", "auto") else ray_address, include_dashboard=False)
    import ray

    if storage_url == "memory":
        raise ConfigError(
            "parallel trials over Ray need a storage every worker can reach: sqlite:///... or journal:..."
        )
    workers = int(n_workers) if n_workers and n_workers > 1 else max(1, int(ray.cluster_resources().get("CPU", 1)))
    workers = min(workers, n_trials)
    shares = [n_trials // workers + (j < n_trials % workers) for j in range(workers)]

    @ray.remote(num_cpus=1)
    def work(j: int, share: int, objective_ref: Any) -> int:
        study = _load_study(study_name, storage_url, seed + 1000 * (j + 1), prune)
        study.optimize(objective_ref, n_trials=share, timeout=timeout, catch=_TRIAL_ERRORS)
        return share

    ref = ray.put(objective)
    ray.get([work.remote(j, share, ref) for j, share in enumerate(shares) if share > 0])


def _sampler_and_pruner(seed: int, prune: bool) -> tuple[Any, Any]:
    optuna = _optuna()
    sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1) if prune else optuna.pruners.NopPruner()
    return sampler, pruner


def _load_study(study_name: str, storage: Any, seed: int, prune: bool) -> Any:
    optuna = _optuna()
    if isinstance(storage, str):
        storage = make_storage(storage, Path("."))[0]
    sampler, pruner = _sampler_and_pruner(seed, prune)
    return optuna.create_study(
        study_name=study_name, storage=storage, sampler=sampler, pruner=pruner, direction="maximize",
        load_if_exists=True,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------- tune
def tune(
    config: ExperimentConfig | Mapping[str, Any] | str | Path,
    n_trials: int | None = None,
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    metric: str | None = None,
    n_jobs: int = 1,
    ray_address: str | None = None,
    *,
    out: str | Path = "fusionrec-output/tune",
    models: Sequence[str] | None = None,
    seed: int = 0,
    prune: bool = True,
    data_dir: str | Path | None = None,
    dataset: Dataset | None = None,
    split: Split | None = None,
    side: SideInfo | None = None,
    verbose: bool | None = None,
    track: bool = False,
    tracking_uri: str | None = None,
    on_event: Callable[[str], None] | None = None,
) -> TuningResult:
    """Tune the config's models on valid, refit the best of each and evaluate it on test once.

    Parameters
    ----------
    config
        An :class:`~fusionrec.evaluation.experiment.ExperimentConfig`, a config mapping or a JSON/TOML file.  Its
        split must have a validation part.  Its optional ``tune`` table gives defaults for ``metric``,
        ``trials``, ``timeout``, ``models`` and per-label ``space`` overrides.
    n_trials
        Finished (complete or pruned) trials each model's study should hold (default: ``tune.trials`` or 20); a
        resumed study runs only the missing ones.
    timeout
        Seconds per model's optimisation (default: ``tune.timeout`` or none).
    storage
        ``sqlite:///path.db`` (default ``OUT/tuning.db``), ``journal:path.log`` or ``memory``.
    study_name
        Prefix of the studies (default: the config's name); each model's study is ``"{study_name}/{label}"``.
    metric
        Validation metric to maximise, ``"ndcg@20"`` by default (any ranking metric ``name@k``).
    n_jobs
        Parallel trials: threads in this process, or Ray tasks when ``ray_address`` is given (there ``1`` means
        one task per CPU of the cluster).
    ray_address
        Run the trials over a Ray cluster (``"local"``, ``"auto"``, ``"HOST:PORT"``; see
        :func:`fusionrec.distributed.init_ray`).
    out
        Folder of ``tuning.json``, ``results.json``, ``report.html`` (and ``tuning.db`` by default).
    models
        Labels of the models to tune (default: ``tune.models``, or every model with a search space); the others
        are evaluated as configured.
    seed
        Seed of the TPE sampler.
    prune
        Stop unpromising trials of models with the epoch hook (MedianPruner on the per-epoch valid metric).
    verbose
        Draw progress bars while fitting and scoring (:func:`fusionrec.set_progress`); ``None`` keeps the
        process-wide setting.
    track, tracking_uri
        Log the study, its trials and the final report to MLflow (:mod:`fusionrec.tracking`).
    """
    from fusionrec._progress import progress_enabled
    from fusionrec.evaluation.experiment import ExperimentConfig, ModelSpec, build_dataset_and_split, load_config

    optuna = _optuna()
    say = on_event or (lambda _msg: None)
    if isinstance(config, str | Path):
        config = load_config(config)
    elif not isinstance(config, ExperimentConfig):
        config = ExperimentConfig.from_dict(config)
    tconf = config.tune
    metric = str(metric or tconf.get("metric", "ndcg@20"))
    metric_key, metric_name, metric_k = _metric_key(metric, config)
    n_trials = int(n_trials if n_trials is not None else tconf.get("trials", 20))
    if n_trials < 1:
        raise ConfigError(f"n_trials must be a positive integer, got {n_trials}")
    timeout = timeout if timeout is not None else tconf.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
        raise ConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ConfigError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    chosen = models is not None or config.tune.get("models") is not None
    specs = _tuned_specs(config, models)
    spaces = {s.display: _space_for(s, config) for s in specs}  # bad spaces fail before any data is loaded
    for s in specs:
        if chosen and not spaces[s.display][0]:
            raise _no_space(s)
    specs = [s for s in specs if spaces[s.display][0]]  # by default: every model with a search space
    if not specs:
        raise _no_space(config.models[0])
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    store, storage_url = make_storage(storage, out_dir)
    prefix = study_name or config.name
    started = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    with progress_enabled(verbose):
        if split is None:
            dataset, split = build_dataset_and_split(config, data_dir)
        say(f"split: {split.summary()}")
        if side is None and any(_needs_side(s.name) for s in config.models):
            from fusionrec.evaluation.experiment import _side_info

            say("encoding side information")
            side = _side_info(dataset, split)
        raw = None
        if any(_needs_raw(s.name) for s in specs):
            from fusionrec.evaluation.experiment import raw_content

            raw = raw_content(dataset, split)  # the items' texts / images, for models that encode them themselves
        _valid_scorer(split, metric_name, metric_k)  # no valid part: say so before any trial
        tuned: list[ModelTuning] = []
        for spec in specs:
            space, fixed = spaces[spec.display]
            name = f"{prefix}/{spec.display}"
            study = _load_study(name, store, seed, prune)
            done = _n_finished(study)
            todo = max(0, n_trials - done)
            study = _load_study(name, store, seed + done, prune)  # resumed: new random points
            say(f"tuning {spec.display}: {done} finished trials in {name!r}, running {todo} more")
            objective = _make_objective(spec, space, fixed, split, side, metric_name, metric_k, prune, raw)
            if todo:
                if ray_address is not None:
                    _run_ray(name, storage_url, objective, todo, timeout, n_jobs, seed + done, ray_address, prune)
                else:  # threads share one terminal: bars only for sequential trials
                    with progress_enabled(False if n_jobs > 1 else None):
                        study.optimize(objective, n_trials=todo, timeout=timeout, n_jobs=n_jobs, catch=_TRIAL_ERRORS)
            study = _load_study(name, store, seed, prune)
            rows = _trial_rows(study)
            try:
                best = study.best_trial
            except ValueError:
                raise ConfigError(
                    f"no trial of {spec.display} finished: "
                    + "; ".join(sorted({str(r["error"]) for r in rows if r["error"]}) or ["(no error recorded)"])
                    + " -- fix the search space or the fixed parameters"
                ) from None
            best_params = {**fixed, **{k: _jsonable(v) for k, v in best.params.items()}}
            say(f"  best {spec.display}: valid {metric} {best.value:.4f} with {best.params}")
            tuned.append(ModelTuning(spec.display, spec.name, name, space, fixed, best_params, float(best.value), rows))

        # refit the best configurations on train and evaluate on test, once
        from fusionrec.evaluation.experiment import run_experiment

        best_by_label = {t.label: t.best_params for t in tuned}
        final_models = tuple(
            ModelSpec(m.name, best_by_label.get(m.display, m.params), m.display) for m in config.models
        )
        final = replace(
            config,
            models=final_models,
            name=f"{config.name} (tuned on valid)",
            k=tuple(sorted({*config.k, metric_k})),
            metrics=tuple(dict.fromkeys([*config.metrics, metric_name])),
        )
        say("refitting the best configurations on train, evaluating on test")
        result = run_experiment(final, dataset=dataset, split=split, side=side, on_event=say)
    for t in tuned:
        row = next((m for m in result.models if m.label == t.label), None)
        if row is not None:
            t.test = {k: float(v) for k, v in row.ranking.metrics.items()}
    tr = TuningResult(metric_key, storage_url, tuned, result, seconds=time.perf_counter() - started)
    tr.paths = write_tuning(tr, out_dir)
    if track:
        from fusionrec.tracking import log_tuning

        log_tuning(tr, tracking_uri=tracking_uri)
    return tr


def _needs_raw(name: str) -> bool:
    """Whether the model encodes the items' raw texts / images itself (declared ``raw_content``)."""
    from fusionrec.models.registry import get_model_class

    try:
        return bool(get_model_class(name).declaration().raw_content)
    except ImportError:
        return False


def _needs_side(name: str) -> bool:
    from fusionrec.models.registry import get_model_class

    try:
        return bool(get_model_class(name).uses_side_info)
    except ImportError:
        return False


def write_tuning(result: TuningResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``tuning.json`` and the test report (``results.json``, ``report.html``) into ``out_dir``."""
    from fusionrec.evaluation.report import write_report

    out = Path(out_dir)
    paths = write_report(result.experiment, out)
    path = out / "tuning.json"
    path.write_text(json.dumps(result.to_json(), indent=2, default=str) + "\n")
    return {**paths, "tuning": path}
