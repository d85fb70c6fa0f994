"""Experiments from a config: dataset -> split -> models -> metrics (+ significance), one call.

A config is a JSON or TOML file (or a dict)::

    {
      "name": "baselines-on-synthetic",
      "dataset": {"name": "synthetic", "params": {"n_users": 300}},
      "split": {"strategy": "per_user", "params": {"ratios": [0.8, 0.1, 0.1], "seed": 0}},
      "models": [{"name": "MostPopular"}, {"name": "ALS", "params": {"n_factors": 32}}],
      "metrics": ["precision", "recall", "ndcg", "map", "mrr"],
      "k": [10, 20],
      "rating_metrics": true,
      "significance": true
    }

An optional ``tune`` table configures :func:`fusionrec.tuning.tune` (``fusionrec tune CONFIG``): ``metric``,
``trials``, ``timeout``, ``models`` (the labels to tune) and ``space`` (per label, ranges that replace the model's
declared search space); :func:`run_experiment` ignores it.

A model entry may carry ``"rerank": {"calibrate": 0.3, "diversify": 0.3, "max_share": {"Drama": 0.3}}``
(:func:`fusionrec.rerank.from_spec`): its top 100 are re-ranked before scoring, with the dataset's first categorical
item modality (genres) as groups (else short head ``0`` / long tail ``1``) and the model's item embeddings (else the
groups) for diversity.

``"fairness": true`` adds the fairness extras of :func:`~fusionrec.evaluation.evaluate_ranking` to every model's
row and to the report: the NDCG gap between the user activity quartiles of train, calibration KL and exposure Gini
over short-head / long-tail items, item exposure Gini and the popular-item share.

``dataset`` may instead be a user's own files, read by :func:`fusionrec.data.from_files` (paths relative to
the config file's folder, or absolute; ``options`` are its keyword arguments)::

    "dataset": {"name": "my-shop",
                "files": {"interactions": "ratings.csv", "items": "items.csv", "users": "users.csv",
                          "social": "friends.csv"},
                "options": {}}

``split`` may instead name a predefined file: ``{"file": "splits/ml-latest-small.random811.csv"}``
(relative to the data directory) or a benchmark split ``{"benchmark": "ml-latest-small.random811"}``.

Model names, model parameters (also those of ensemble members) and metric names are checked when the config
is read, so that a typo is reported before any data is loaded or any model trained.
"""

from __future__ import annotations

import difflib
import inspect
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fusionrec.data.dataset import Dataset
from fusionrec.data.interactions import Interactions
from fusionrec.data.split import Split
from fusionrec.errors import ConfigError
from fusionrec.evaluation import metrics as M
from fusionrec.evaluation.protocol import DEFAULT_METRICS, RankingResult, evaluate_ranking, evaluate_ratings
from fusionrec.evaluation.stats import paired_ttest, wilcoxon_test
from fusionrec.models.base import Recommender, SideInfo
from fusionrec.models.registry import make_model

__all__ = [
    "ExperimentConfig",
    "ExperimentResult",
    "ModelResult",
    "ModelSpec",
    "fit_model",
    "load_config",
    "run_experiment",
]

#: the keys of ``dataset["files"]`` (the arguments of :func:`fusionrec.data.from_files`)
DATASET_FILES = ("interactions", "items", "users", "social")


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_model_params(name: str, params: Mapping[str, Any], where: str = "") -> None:
    """Raise :class:`ConfigError` for an unknown model name, a parameter the model does not take or a bad value.

    The model is built (not fitted) with :func:`~fusionrec.models.registry.make_model`, which checks the names
    and values; ensemble members given as names or ``{"name", "params"}`` specs (``params["models"]``) are
    checked the same way.  A model whose optional dependency is missing is not checked here (the experiment
    reports it).
    """
    try:
        make_model(name, **params)
    except ImportError:
        return
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from exc
    members = params.get("models")
    if isinstance(members, list | tuple):
        for j, member in enumerate(members):
            if isinstance(member, str):
                check_model_params(member, {}, f"{where}{name} member {j}: ")
            elif isinstance(member, Mapping) and isinstance(member.get("name"), str):
                check_model_params(member["name"], dict(member.get("params") or {}), f"{where}{name} member {j}: ")


def _check_metrics(metrics: Any) -> tuple[str, ...]:
    if isinstance(metrics, str) or not isinstance(metrics, list | tuple):
        raise ConfigError(f"metrics must be a list of names such as ['ndcg', 'recall'], got {metrics!r}")
    for name in metrics:
        if name not in M.RANKING:
            raise ConfigError(
                f"unknown ranking metric {name!r}{_did_you_mean(name, M.RANKING)}; choose from {sorted(M.RANKING)}"
            )
    return tuple(metrics)


def _check_tune(tune: Any) -> dict[str, Any]:
    if not isinstance(tune, Mapping):
        raise ConfigError(f"tune must be a table of metric, trials, timeout, models, space; got {tune!r}")
    unknown = set(tune) - {"metric", "trials", "timeout", "models", "space"}
    if unknown:
        raise ConfigError(
            f"unknown tune key(s) {sorted(unknown)}{_did_you_mean(sorted(unknown)[0], ['metric', 'trials', 'timeout', 'models', 'space'])}; "
            "use metric, trials, timeout, models, space"
        )
    return dict(tune)


def _check_split(split: Mapping[str, Any]) -> None:
    """A named split rule: the strategy and its parameter names (values are checked when splitting)."""
    if "file" in split or "benchmark" in split:
        return
    if "strategy" not in split:
        raise ConfigError(
            "split needs a 'strategy' (random, per_user, leave_last, temporal, cold_items, ...) or a 'file'"
        )
    from fusionrec.data.splits import _ALIASES, STRATEGIES

    key = str(split["strategy"]).strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in STRATEGIES:
        raise ConfigError(
            f"unknown split strategy {split['strategy']!r}{_did_you_mean(key, STRATEGIES)}; "
            f"choose one of {sorted(STRATEGIES)}"
        )
    params = split.get("params", {})
    if not isinstance(params, Mapping):
        raise ConfigError(f"split params must be a mapping, got {params!r}")
    accepted = [p for p in inspect.signature(STRATEGIES[key]).parameters if p != "x"]
    for name in params:
        if name not in accepted:
            raise ConfigError(
                f"split strategy {key!r} has no parameter {name!r}{_did_you_mean(name, accepted)}; "
                f"its parameters are {accepted}"
            )


def _check_dataset(dataset: Mapping[str, Any]) -> None:
    unknown = set(dataset) - {"name", "params", "files", "options"}
    if unknown:
        raise ConfigError(
            f"unknown dataset key(s) {sorted(unknown)}; use 'name' and 'params' for a registered dataset, "
            "'files' and 'options' for your own files"
        )
    if "files" not in dataset:
        if not dataset.get("name"):
            raise ConfigError("the dataset needs a 'name' (see `fusionrec datasets list`) or 'files'")
        return
    files = dataset["files"]
    if isinstance(files, str):
        files = {"interactions": files}
    if not isinstance(files, Mapping) or "interactions" not in files:
        raise ConfigError('dataset files need at least {"interactions": "path/to/interactions.csv"}')
    bad = set(files) - set(DATASET_FILES)
    if bad:
        raise ConfigError(
            f"unknown dataset file kind(s) {sorted(bad)}{_did_you_mean(sorted(bad)[0], DATASET_FILES)}; "
            f"use {list(DATASET_FILES)}"
        )
    options = dataset.get("options", {})
    if not isinstance(options, Mapping):
        raise ConfigError("dataset options must be a mapping of keyword arguments of fusionrec.data.from_files")
    from fusionrec.data import from_files

    accepted = [n for n in inspect.signature(from_files).parameters if n not in DATASET_FILES]
    for key in options:
        if key not in accepted:
            raise ConfigError(
                f"from_files has no option {key!r}{_did_you_mean(key, accepted)}; its options are {accepted}"
            )


@dataclass(frozen=True)
class ModelSpec:
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    #: a :func:`fusionrec.rerank.from_spec` spec applied to the model's top 100 before scoring (empty: none)
    rerank: dict[str, Any] = field(default_factory=dict)

    @property
    def display(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class ExperimentConfig:
    """A parsed experiment configuration (see the module docstring for the format)."""

    name: str
    dataset: dict[str, Any]
    split: dict[str, Any]
    models: tuple[ModelSpec, ...]
    metrics: tuple[str, ...] = DEFAULT_METRICS
    k: tuple[int, ...] = (10, 20)
    rating_metrics: bool = True
    significance: bool = True
    compute_auc: bool = True
    #: fairness extras: NDCG gap between user activity quartiles, calibration KL / exposure over short-head and
    #: long-tail items, exposure Gini, popular-item share (:func:`~fusionrec.evaluation.evaluate_ranking`)
    fairness: bool = False
    #: folder that relative dataset file paths are read from (the config file's folder; ``None``: the cwd)
    base_dir: Path | None = None
    #: the ``tune`` table (:mod:`fusionrec.tuning`; checked there), empty when absent
    tune: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], base_dir: str | Path | None = None) -> ExperimentConfig:
        """Parse and check a config mapping; ``base_dir`` is where relative dataset file paths start."""
        if not isinstance(raw, Mapping):
            raise ConfigError("an experiment config must be a mapping (JSON object / TOML table)")
        unknown = set(raw) - {
            "name",
            "dataset",
            "split",
            "models",
            "metrics",
            "k",
            "rating_metrics",
            "significance",
            "compute_auc",
            "fairness",
            "tune",
        }
        if unknown:
            raise ConfigError(f"unknown config key(s) {sorted(unknown)}")
        for key in ("dataset", "split", "models"):
            if key not in raw:
                raise ConfigError(f"the config needs a {key!r} entry (see fusionrec.evaluation.experiment docs)")
        dataset = raw["dataset"]
        if isinstance(dataset, str):
            dataset = {"name": dataset}
        if not isinstance(dataset, Mapping):
            raise ConfigError(f"dataset must be a name or a mapping, got {dataset!r}")
        split = raw["split"]
        if isinstance(split, str):
            split = {"strategy": split}
        if not isinstance(split, Mapping):
            raise ConfigError(f"split must be a strategy name or a mapping, got {split!r}")
        if dataset and "benchmark" not in split and "file" not in split:
            _check_dataset(dataset)
        if split.get("strategy") != "given":  # "given": a Split passed to run_experiment (the ablation's)
            _check_split(split)
        models = []
        for m in raw["models"]:
            if isinstance(m, str):
                m = {"name": m}
            if "name" not in m:
                raise ConfigError(f"each model needs a 'name'; got {m}")
            extra = set(m) - {"name", "params", "label", "rerank"}
            if extra:
                raise ConfigError(
                    f"model {m['name']!r} has unknown key(s) {sorted(extra)}; use name, params, label, rerank"
                )
            check_model_params(m["name"], dict(m.get("params", {})))
            rerank = _check_rerank(m["name"], m.get("rerank") or {})
            models.append(ModelSpec(m["name"], dict(m.get("params", {})), m.get("label", ""), rerank))
        if not models:
            raise ConfigError("the config lists no models")
        labels = [m.display for m in models]
        if len(set(labels)) != len(labels):
            raise ConfigError("two models share a name; give them distinct 'label's")
        try:
            ks = tuple(int(x) for x in np.atleast_1d(raw.get("k", (10, 20))))
        except (TypeError, ValueError):
            raise ConfigError(f"k must be a list of positive integers, got {raw.get('k')!r}") from None
        if not ks or min(ks) < 1:
            raise ConfigError(f"k must be a list of positive integers, got {raw.get('k')!r}")
        return cls(
            name=str(raw.get("name", "experiment")),
            dataset=dict(dataset),
            split=dict(split),
            models=tuple(models),
            metrics=_check_metrics(raw.get("metrics", DEFAULT_METRICS)),
            k=ks,
            rating_metrics=bool(raw.get("rating_metrics", True)),
            significance=bool(raw.get("significance", True)),
            compute_auc=bool(raw.get("compute_auc", True)),
            fairness=bool(raw.get("fairness", False)),
            base_dir=None if base_dir is None else Path(base_dir),
            tune=_check_tune(raw.get("tune", {})),
        )

    def dataset_files(self) -> dict[str, Path]:
        """The configured dataset files resolved against :attr:`base_dir` (empty for a registered dataset).

        Raises :class:`ConfigError` naming the config folder when a file does not exist.
        """
        files = self.dataset.get("files")
        if not files:
            return {}
        if isinstance(files, str):
            files = {"interactions": files}
        base = self.base_dir if self.base_dir is not None else Path.cwd()
        out = {}
        for kind, value in files.items():
            if value is None:
                continue
            path = Path(str(value)).expanduser()
            path = path if path.is_absolute() else base / path
            if not path.exists():
                raise ConfigError(
                    f"dataset {kind} file {value!r} not found (looked for {path}); paths are relative to the "
                    f"config file's folder {base}"
                )
            out[kind] = path
        return out


def load_config(path: str | Path) -> ExperimentConfig:
    """Read a JSON or TOML experiment config."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {p} does not exist")
    text = p.read_text()
    try:
        if p.suffix.lower() == ".toml":
            import tomllib

            raw = tomllib.loads(text)
        else:
            raw = json.loads(text)
    except (ValueError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{p} is not valid {p.suffix.lstrip('.') or 'JSON'}: {exc}") from exc
    try:
        cfg = ExperimentConfig.from_dict(raw, base_dir=p.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from exc
    cfg.dataset_files()  # a missing file is reported now, before anything is trained
    return cfg


@dataclass
class ModelResult:
    label: str
    model: Recommender
    fit_seconds: float
    ranking: RankingResult
    ratings: dict[str, float] | None = None
    error: str | None = None


@dataclass
class ExperimentResult:
    config: ExperimentConfig
    dataset: Dataset | None
    split: Split
    models: list[ModelResult]
    significance: list[dict[str, Any]] = field(default_factory=list)
    #: rows of :func:`fusionrec.evaluation.ablation.modality_ablation` when one was run
    ablation: list[dict[str, Any]] = field(default_factory=list)
    #: label -> error message of the models that failed to fit (not in ``models``)
    failed: dict[str, str] = field(default_factory=dict)

    def table(self) -> list[dict[str, Any]]:
        """One row per model: label, every metric, fit and evaluation seconds."""
        rows = []
        for m in self.models:
            row: dict[str, Any] = {"model": m.label, **m.ranking.metrics}
            if m.ratings:
                row.update({k: v for k, v in m.ratings.items() if k != "n"})
            row["fit_s"] = m.fit_seconds
            row["eval_s"] = m.ranking.seconds
            rows.append(row)
        return rows

    def to_json(self) -> dict[str, Any]:
        out = {
            "name": self.config.name,
            "dataset": self.config.dataset,
            "split": {**self.config.split, "sizes": self.split.summary()},
            "results": self.table(),
            "significance": self.significance,
            "params": {m.label: m.model.get_params() for m in self.models},
        }
        if self.ablation:
            out["ablation"] = self.ablation
        if self.failed:
            out["failed"] = self.failed
        return out


def fit_model(
    model: Recommender,
    train: Interactions,
    *,
    side: SideInfo | None = None,
    valid: Interactions | None = None,
    raw: Mapping[str, Any] | None = None,
) -> Recommender:
    """Fit ``model`` on ``train`` with the inputs its class declares it takes (``fit_inputs``: ``side``, ``valid``,
    and the items' raw ``texts`` / ``images`` from ``raw``, :func:`raw_content`); the others are not passed.  What
    experiments and tuning fit with."""
    return model.fit(train, **type(model).declaration().fit_kwargs(side=side, valid=valid, **dict(raw or {})))


def raw_content(dataset: Dataset | None, split: Split) -> dict[str, Any]:
    """``{"texts": ..., "images": ...}`` of the split's training items from the dataset's item modalities
    (:func:`fusionrec.data.documents.dataset_documents`: one document and one image per item, as ``fusionrec train``
    gives them), for the models that encode raw content themselves; ``{}`` without a dataset."""
    if dataset is None or not dataset.item_modalities:
        return {}
    from fusionrec.data.documents import dataset_documents

    texts, images = dataset_documents(dataset, split.train.item_ids)
    return {k: v for k, v in (("texts", texts), ("images", images)) if v is not None}


def build_dataset_and_split(
    config: ExperimentConfig, data_dir: str | Path | None = None
) -> tuple[Dataset | None, Split]:
    """Load the configured dataset and split it."""
    from fusionrec.config import data_dir as configured_data_dir
    from fusionrec.data.datasets import load_benchmark_split, load_dataset
    from fusionrec.data.io import load_split_file

    spec = config.split
    if "benchmark" in spec:
        # a given directory that does not exist goes on as it is, so that the error says so
        root = configured_data_dir(data_dir) or data_dir
        split = load_benchmark_split(spec["benchmark"], data_dir=root)
        dataset = None
        if config.dataset.get("name"):
            dataset = load_dataset(config.dataset["name"], data_dir=root, **config.dataset.get("params", {}))
        return dataset, split
    if "file" in spec:
        root = configured_data_dir(data_dir)
        path = Path(spec["file"])
        if not path.is_absolute() and root is not None:
            path = root / path
        return None, load_split_file(path)
    from fusionrec.data.splits import make_split

    files = config.dataset_files()
    if files:
        from fusionrec.data import from_files

        options = dict(config.dataset.get("options", {}))
        if config.dataset.get("name") and "name" not in options:
            options["name"] = config.dataset["name"]
        dataset = from_files(
            files["interactions"], items=files.get("items"), users=files.get("users"), social=files.get("social"),
            **options,
        )  # fmt: skip
    else:
        dataset = load_dataset(config.dataset["name"], data_dir=data_dir, **config.dataset.get("params", {}))
    if "strategy" not in spec:
        raise ConfigError(
            "split needs a 'strategy' (random, per_user, leave_last, temporal, cold_items, ...) or a 'file'"
        )
    split = make_split(dataset.interactions, spec["strategy"], **spec.get("params", {}))
    return dataset, split


def _side_info(dataset: Dataset | None, split: Split) -> SideInfo | None:
    if dataset is None or not (dataset.item_modalities or dataset.user_modalities or dataset.social is not None):
        return None
    from fusionrec.features.pipeline import build_side_info

    side, _report = build_side_info(dataset)
    return side


def run_experiment(
    config: ExperimentConfig,
    *,
    data_dir: str | Path | None = None,
    on_event: Callable[[str], None] | None = None,
    dataset: Dataset | None = None,
    split: Split | None = None,
    side: SideInfo | None = None,
    verbose: bool | None = None,
) -> ExperimentResult:
    """Fit every configured model on the train part and evaluate it on the test part.

    Validation interactions (when the split has them) are masked from the test rankings; they are given
    to the models whose ``fit`` takes ``valid`` (early stopping of DeepFusion, the combiner of a blend) and
    are not training data otherwise.  ``side`` is side information already built for ``dataset`` (it is
    built from the dataset's modalities otherwise, when a model uses it).  A model that fails is reported
    with its error; the others go on.  ``verbose=True`` draws progress bars (encoding, epochs, ranking) for
    this call; ``None`` keeps the process-wide :func:`fusionrec.set_progress` setting.
    """
    if verbose is not None:
        from fusionrec._progress import progress_enabled

        with progress_enabled(verbose):
            return run_experiment(config, data_dir=data_dir, on_event=on_event, dataset=dataset, split=split, side=side)
    say = on_event or (lambda _msg: None)
    needs_side = needs_raw = False
    models: list[tuple[ModelSpec, Recommender]] = []
    for spec in config.models:  # bad model names fail before any data is loaded
        model = make_model(spec.name, **spec.params)
        needs_side |= type(model).declaration().uses_side_info
        needs_raw |= bool(type(model).declaration().raw_content)
        models.append((spec, model))
    if split is None:
        dataset, split = build_dataset_and_split(config, data_dir)
    say(f"split: {split.summary()}")
    if needs_side and side is None:
        say("encoding side information")
        side = _side_info(dataset, split)
    raw = raw_content(dataset, split) if needs_raw else {}
    exclude = [split.train] + ([split.valid] if split.valid is not None else [])
    candidates = None
    if split.cold == "items" and "test_items" in split.meta:
        candidates = np.asarray(split.meta["test_items"])
    results: list[ModelResult] = []
    failed: dict[str, str] = {}
    for spec, model in models:
        say(f"fitting {spec.display}")
        t0 = time.perf_counter()
        try:
            fit_model(model, split.train, side=side, valid=split.valid, raw=raw)
        except Exception as exc:  # one broken model must not sink the whole report
            from fusionrec.errors import FusionRecError

            if not isinstance(exc, FusionRecError | ValueError | NotImplementedError | ImportError):
                raise
            say(f"  {spec.display} failed: {exc}")
            failed[spec.display] = str(exc)
            continue
        fit_s = time.perf_counter() - t0
        say(f"evaluating {spec.display}")
        ranking = evaluate_ranking(
            model,
            split.train,
            split.test,
            k=config.k,
            metrics=config.metrics,
            exclude=exclude,
            candidates=candidates,
            compute_auc=config.compute_auc,
            cold_users=split.cold == "users",
            **_fairness_groups(config, split),
            rerank=_reranker(spec, model, dataset, split) if spec.rerank else None,
        )
        ratings = None
        if config.rating_metrics and split.test.explicit and type(model).predicts_ratings:
            ratings = evaluate_ratings(model, split.test)
        results.append(ModelResult(spec.display, model, fit_s, ranking, ratings))
    out = ExperimentResult(config, dataset, split, results, failed=failed)
    if config.significance and len(results) > 1:
        out.significance = significance_table(results, f"NDCG@{max(config.k)}")
    return out


def _check_rerank(model: str, spec: Any) -> dict[str, Any]:
    """A model's ``rerank`` table: keys of :data:`fusionrec.rerank.SPEC_KEYS`, numbers in [0, 1]."""
    from fusionrec.rerank import SPEC_KEYS

    if not isinstance(spec, Mapping):
        raise ConfigError(f"model {model!r}: rerank must be a table such as {{diversify = 0.3}}, got {spec!r}")
    unknown = set(spec) - set(SPEC_KEYS)
    if unknown:
        raise ConfigError(f"model {model!r}: unknown rerank option(s) {sorted(unknown)}; choose from {list(SPEC_KEYS)}")
    return dict(spec)


def _reranker(spec: ModelSpec, model: Recommender, dataset: Dataset | None, split: Split) -> Any:
    """The model's reranker: the dataset's first categorical item modality (genres) as groups, else short head /
    long tail; the model's item embeddings (else the groups) for MMR; the training interactions as history."""
    from fusionrec.rerank import from_spec, groups_from_labels

    groups, names = None, None
    mod = (
        None
        if dataset is None
        else next((m for m in dataset.item_modalities.values() if m.kind == "categorical"), None)
    )
    if mod is not None:
        values, present = mod.align(split.train.item_ids)
        labels = [
            ([str(x) for x in v] if isinstance(v, list | tuple | np.ndarray) else [str(v)])
            if ok and v is not None
            else []
            for v, ok in zip(values, present)
        ]
        groups, names = groups_from_labels(labels)
    else:
        groups = M.popularity_groups(split.train.item_counts())
    vectors = None
    if "diversify" in spec.rerank:
        try:
            vectors = model.item_embeddings()
        except NotImplementedError:
            vectors = None
        if vectors is None or len(vectors) != split.train.n_items:
            vectors = M.item_group_matrix(groups)
    return from_spec(spec.rerank, item_groups=groups, item_vectors=vectors, history=split.train, group_names=names)


def _fairness_groups(config: ExperimentConfig, split: Split) -> dict[str, Any]:
    """``user_groups`` (activity quartiles of train) and ``item_groups`` (short head / long tail of train) for
    :func:`evaluate_ranking` when the config asks for ``fairness``."""
    if not config.fairness:
        return {}
    return {
        "user_groups": M.activity_groups(split.train.user_counts()),
        "item_groups": M.popularity_groups(split.train.item_counts()),
    }


def significance_table(results: list[ModelResult], metric: str) -> list[dict[str, Any]]:
    """Paired t-test and Wilcoxon of the best model against every other on a per-user metric."""
    scored = [r for r in results if metric in r.ranking.per_user]
    if len(scored) < 2:
        return []
    best = max(scored, key=lambda r: r.ranking.metrics[metric])
    rows = []
    for other in scored:
        if other is best:
            continue
        a, b = best.ranking.per_user[metric], other.ranking.per_user[metric]
        if a.shape != b.shape:
            continue
        t, w = paired_ttest(a, b), wilcoxon_test(a, b)
        rows.append(
            {
                "best": best.label,
                "other": other.label,
                "metric": metric,
                "mean_difference": t.mean_difference,
                "t_p_value": t.p_value,
                "wilcoxon_p_value": w.p_value,
                "n_users": t.n,
            }
        )
    return rows
