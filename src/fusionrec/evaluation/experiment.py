"""Experiments from a config: dataset -> split -> models -> metrics (+ significance), one call.

A config is a JSON or TOML file (or a dict)::

    {
      "name": "baselines-on-synthetic",
      "dataset": {"name": "synthetic", "params": {"n_users": 300}},
      "split": {"strategy": "per_user", "params": {"ratios": [0.8, 0.1, 0.1], "seed": 0}},
      "models": [{"name": "MostPopular"}, {"name": "ALS", "params": {"factors": 32}}],
      "metrics": ["precision", "recall", "ndcg", "map", "mrr"],
      "k": [10, 20],
      "rating_metrics": true,
      "significance": true
    }

``split`` may instead name a predefined file: ``{"file": "splits/ml-latest-small.random811.csv"}``
(relative to the data directory) or a benchmark split ``{"benchmark": "ml-latest-small.random811"}``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fusionrec.data.dataset import Dataset
from fusionrec.data.split import Split
from fusionrec.errors import ConfigError
from fusionrec.evaluation.protocol import DEFAULT_METRICS, RankingResult, evaluate_ranking, evaluate_ratings
from fusionrec.evaluation.stats import paired_ttest, wilcoxon_test
from fusionrec.models.base import Recommender, SideInfo
from fusionrec.models.registry import make_model

__all__ = ["ExperimentConfig", "ExperimentResult", "ModelResult", "load_config", "run_experiment"]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    label: str = ""

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

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ExperimentConfig:
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
        }
        if unknown:
            raise ConfigError(f"unknown config key(s) {sorted(unknown)}")
        for key in ("dataset", "split", "models"):
            if key not in raw:
                raise ConfigError(f"the config needs a {key!r} entry (see fusionrec.evaluation.experiment docs)")
        dataset = raw["dataset"]
        if isinstance(dataset, str):
            dataset = {"name": dataset}
        split = raw["split"]
        if isinstance(split, str):
            split = {"strategy": split}
        models = []
        for m in raw["models"]:
            if isinstance(m, str):
                m = {"name": m}
            if "name" not in m:
                raise ConfigError(f"each model needs a 'name'; got {m}")
            models.append(ModelSpec(m["name"], dict(m.get("params", {})), m.get("label", "")))
        if not models:
            raise ConfigError("the config lists no models")
        labels = [m.display for m in models]
        if len(set(labels)) != len(labels):
            raise ConfigError("two models share a name; give them distinct 'label's")
        return cls(
            name=str(raw.get("name", "experiment")),
            dataset=dict(dataset),
            split=dict(split),
            models=tuple(models),
            metrics=tuple(raw.get("metrics", DEFAULT_METRICS)),
            k=tuple(int(x) for x in np.atleast_1d(raw.get("k", (10, 20)))),
            rating_metrics=bool(raw.get("rating_metrics", True)),
            significance=bool(raw.get("significance", True)),
            compute_auc=bool(raw.get("compute_auc", True)),
        )


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
    return ExperimentConfig.from_dict(raw)


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
        return {
            "name": self.config.name,
            "dataset": self.config.dataset,
            "split": {**self.config.split, "sizes": self.split.summary()},
            "results": self.table(),
            "significance": self.significance,
            "params": {m.label: m.model.get_params() for m in self.models},
        }


def build_dataset_and_split(
    config: ExperimentConfig, data_dir: str | Path | None = None
) -> tuple[Dataset | None, Split]:
    """Load the configured dataset and split it."""
    from fusionrec.config import data_dir as configured_data_dir
    from fusionrec.data.datasets import load_benchmark_split, load_dataset
    from fusionrec.data.io import load_split_file

    spec = config.split
    if "benchmark" in spec:
        root = configured_data_dir(data_dir)
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

    dataset = load_dataset(config.dataset["name"], data_dir=data_dir, **config.dataset.get("params", {}))
    if "strategy" not in spec:
        raise ConfigError(
            "split needs a 'strategy' (random, per_user, leave_last, temporal, cold_items, ...) or a 'file'"
        )
    split = make_split(dataset.interactions, spec["strategy"], **spec.get("params", {}))
    return dataset, split


def _side_info(dataset: Dataset | None, split: Split) -> SideInfo | None:
    if dataset is None or not (dataset.item_modalities or dataset.user_modalities):
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
) -> ExperimentResult:
    """Fit every configured model on the train part and evaluate it on the test part.

    Validation interactions (when the split has them) are masked from the test rankings but are
    not used for fitting.  A model that fails is reported with its error; the others go on.
    """
    say = on_event or (lambda _msg: None)
    side: SideInfo | None = None
    needs_side = False
    models: list[tuple[ModelSpec, Recommender]] = []
    for spec in config.models:  # bad model names fail before any data is loaded
        model = make_model(spec.name, **spec.params)
        needs_side |= type(model).uses_side_info
        models.append((spec, model))
    if split is None:
        dataset, split = build_dataset_and_split(config, data_dir)
    say(f"split: {split.summary()}")
    if needs_side:
        say("encoding side information")
        side = _side_info(dataset, split)
    exclude = [split.train] + ([split.valid] if split.valid is not None else [])
    candidates = None
    if split.cold == "items" and "test_items" in split.meta:
        candidates = np.asarray(split.meta["test_items"])
    results: list[ModelResult] = []
    for spec, model in models:
        say(f"fitting {spec.display}")
        t0 = time.perf_counter()
        try:
            model.fit(split.train, side)
        except Exception as exc:  # one broken model must not sink the whole report
            from fusionrec.errors import FusionRecError

            if not isinstance(exc, FusionRecError | ValueError | NotImplementedError | ImportError):
                raise
            say(f"  {spec.display} failed: {exc}")
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
        )
        ratings = None
        if config.rating_metrics and split.test.explicit and type(model).predicts_ratings:
            ratings = evaluate_ratings(model, split.test)
        results.append(ModelResult(spec.display, model, fit_s, ranking, ratings))
    out = ExperimentResult(config, dataset, split, results)
    if config.significance and len(results) > 1:
        out.significance = significance_table(results, f"NDCG@{max(config.k)}")
    return out


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
