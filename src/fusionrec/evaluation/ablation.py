"""Modality ablation: what each item modality adds to one content-aware model.

For a model that chooses its item modalities by a parameter (``modalities`` for CEASE, VBPR, DeepFusion,
GraphFusion, ContentKNN; ``item_features`` for HybridMF) :func:`modality_ablation` fits and evaluates

* ``all``: every item modality,
* ``no content``: none (the model's collaborative part alone; CEASE: ``side_weight=0``, i.e. EASE),
* ``only m``: each modality alone,
* ``without m``: each modality removed,

on the same split and side information, through :func:`~fusionrec.evaluation.experiment.run_experiment`
(same fitting, masking and metrics as the main table), and returns one row per variant with the change of the
headline metric against ``all``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fusionrec.errors import ConfigError
from fusionrec.evaluation.metrics import RANKING

if TYPE_CHECKING:
    from fusionrec.data.dataset import Dataset
    from fusionrec.data.split import Split
    from fusionrec.evaluation.experiment import ModelSpec
    from fusionrec.models.base import SideInfo

__all__ = ["modality_ablation", "modality_param"]


def modality_param(model_name: str) -> str:
    """The parameter of a registered model that lists its item modalities: its declared ``modality_param``
    (``"modalities"``, ``"item_features"``; :mod:`fusionrec.models.declaration`).

    Raises :class:`ConfigError` for a model that declares none.
    """
    from fusionrec.models.registry import get_model_class

    param = get_model_class(model_name).declaration().modality_param
    if param is None:
        raise ConfigError(
            f"{model_name} declares no item-modality parameter; ablate a content-aware model such as CEASE, "
            "HybridMF, VBPR, DeepFusion or GraphFusion"
        )
    return str(param)


def _spec(model_spec: ModelSpec | Mapping[str, Any] | str) -> tuple[str, dict[str, Any]]:
    if isinstance(model_spec, str):
        return model_spec, {}
    if isinstance(model_spec, Mapping):
        if not isinstance(model_spec.get("name"), str):
            raise ConfigError(f"a model spec needs a 'name'; got {dict(model_spec)}")
        return model_spec["name"], dict(model_spec.get("params") or {})
    return model_spec.name, dict(model_spec.params)


def modality_ablation(
    model_spec: ModelSpec | Mapping[str, Any] | str,
    dataset: Dataset | None,
    split: Split,
    *,
    side: SideInfo | None = None,
    modalities: Sequence[str] | None = None,
    k: int | Sequence[int] = 20,
    metrics: Sequence[str] = ("recall", "ndcg"),
    on_event: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Fit one model with all, none, each one and all-but-each item modality; one metrics row per variant.

    Parameters
    ----------
    model_spec
        A registered model name, ``{"name": ..., "params": {...}}`` or a :class:`ModelSpec`; its modality
        parameter (:func:`modality_param`) is set per variant, its other parameters are kept.
    dataset, split
        The data to fit and evaluate on (``dataset`` is only needed when ``side`` is not given).
    side
        Side information of ``dataset`` (built with :func:`fusionrec.features.build_side_info` when ``None``).
    modalities
        Item modalities to ablate (default: every item modality of ``side``).
    k, metrics
        Cut-offs and ranking metric names, as in an experiment config.
    on_event
        Called with progress messages.

    Returns
    -------
    list of dict
        Rows ``{"model", "variant", "modalities", <metric>@<k>..., "fit_s", "delta"}`` in the order all, no content,
        only each, without each; ``delta`` is the change of NDCG@max(k) (or the first metric) against ``all``.
        A variant that fails to fit carries ``"error"`` instead of metrics.
    """
    from fusionrec.evaluation.experiment import ExperimentConfig, run_experiment
    from fusionrec.models.registry import get_model_class

    name, params = _spec(model_spec)
    param = modality_param(name)
    if side is None:
        if dataset is None:
            raise ConfigError("modality_ablation needs side information: pass side= or a dataset with modalities")
        from fusionrec.features.pipeline import build_side_info

        side, _ = build_side_info(dataset)
    available = sorted(side.item_features)
    mods = list(available if modalities is None else modalities)
    missing = [m for m in mods if m not in side.item_features]
    if missing:
        raise ConfigError(f"no item modality {missing}; the side information has {available}")
    if len(mods) < 1:
        raise ConfigError("the ablation needs at least one item modality")
    variants: list[tuple[str, list[str]]] = [("all", mods), ("no content", [])]
    if len(mods) > 1:
        variants += [(f"only {m}", [m]) for m in mods]
        variants += [(f"without {m}", [x for x in mods if x != m]) for m in mods]

    def variant_params(v: list[str]) -> dict[str, Any]:
        if not v and "side_weight" in get_model_class(name).param_names():
            # CEASE: content enters through side_weight; 0 is exactly the model without content (EASE)
            return {**params, param: mods, "side_weight": 0.0}
        return {**params, param: v}

    cfg = ExperimentConfig.from_dict(
        {
            "name": f"{name} modality ablation",
            "dataset": {},
            "split": {"strategy": "given"},
            "models": [{"name": name, "params": variant_params(v), "label": label} for label, v in variants],
            "metrics": list(metrics),
            "k": list(k) if isinstance(k, Sequence) else [k],
            "rating_metrics": False,
            "significance": False,
            "compute_auc": False,
        }
    )
    result = run_experiment(cfg, dataset=dataset, split=split, side=side, on_event=on_event)
    by_label = {m.label: m for m in result.models}
    kmax = max(cfg.k)
    keys = [f"{RANKING[m]}@{kk}" for kk in cfg.k for m in cfg.metrics]
    headline = f"{RANKING['ndcg' if 'ndcg' in cfg.metrics else cfg.metrics[0]]}@{kmax}"
    rows: list[dict[str, Any]] = []
    for label, v in variants:
        row: dict[str, Any] = {"model": name, "variant": label, "modalities": list(v)}
        res = by_label.get(label)
        if res is None:
            row["error"] = result.failed.get(label, "fit failed")
        else:
            row.update({key: res.ranking.metrics[key] for key in keys})
            row["fit_s"] = res.fit_seconds
        rows.append(row)
    base = rows[0].get(headline)
    for row in rows:
        value = row.get(headline)
        row["delta"] = None if value is None or base is None else value - base
    return rows
