"""Readable reports: a JSON file and a self-contained HTML page with tables and plots.

The page is rendered from the Jinja2 template ``templates/report.html.j2`` (autoescaped): a header with the
dataset, split and run facts, the metrics table with the best value of each column highlighted, the modality
ablation when one was run, the significance tests and the plots (inline PNGs), readable on a phone.
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fusionrec.evaluation.experiment import ExperimentResult

__all__ = ["LOWER_IS_BETTER", "best_cells", "render_html", "write_report"]

#: metric names (before ``@k``) where a smaller value is better; every other numeric column is "higher is better"
LOWER_IS_BETTER = frozenset(
    {
        "RMSE",
        "MAE",
        "fit_s",
        "eval_s",
        "ARP",
        "Gini",
        "CalibrationKL",
        "ExposureGini",
        "GroupExposureGini",
        "NDCGGap",
        "PopularShare",
    }
)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if v != 0 and abs(v) < 1e-3:
            return f"{v:.2e}"
        return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
    if v is None:
        return "–"
    return str(v)


def _plots(result: ExperimentResult) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    plots: list[tuple[str, str]] = []
    models = result.models
    if not models:
        return plots
    kmax = max(result.config.k)
    names = [m.label for m in models]
    keys = [f"{M}@{kmax}" for M in ("Precision", "Recall", "NDCG", "MAP", "MRR", "HitRate")]
    keys = [k for k in keys if k in models[0].ranking.metrics]
    colours = plt.get_cmap("tab20" if len(models) > 10 else "tab10")
    fig, ax = plt.subplots(figsize=(9, 3.6))
    width = 0.8 / len(models)
    x = np.arange(len(keys))
    for j, m in enumerate(models):
        ax.bar(x + j * width, [m.ranking.metrics[k] for k in keys], width, label=m.label, color=colours(j))
    ax.set_xticks(x + 0.4 - width / 2, keys)
    ax.set_ylabel("mean over test users")
    ax.set_title(f"Accuracy at K={kmax}")
    ax.legend(fontsize=7, ncol=2 if len(models) > 8 else 1)
    plots.append(("Accuracy by model", _png(fig)))

    ks = sorted(result.config.k)
    if len(ks) > 1:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        for ax, metric in zip(axes, ("Recall", "NDCG")):
            for j, m in enumerate(models):
                ax.plot(
                    ks, [m.ranking.metrics.get(f"{metric}@{k}", np.nan) for k in ks],
                    marker="o", label=m.label, color=colours(j),
                )  # fmt: skip
            ax.set_xlabel("K")
            ax.set_title(f"{metric}@K")
        axes[0].legend(fontsize=7, ncol=2 if len(models) > 8 else 1)
        plots.append(("Metrics against list length", _png(fig)))

    key = f"NDCG@{kmax}"
    data = [m.ranking.per_user[key] for m in models if key in m.ranking.per_user]
    if data:
        fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(data)), 3.2))
        ax.boxplot(data, showmeans=True)
        ax.set_xticks(range(1, len(data) + 1), names[: len(data)], rotation=30, ha="right", fontsize=8)
        ax.set_title(f"Per-user {key}")
        plots.append(("Distribution over users", _png(fig)))

    cov, acc = f"Coverage@{kmax}", f"NDCG@{kmax}"
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for j, m in enumerate(models):
        ax.scatter(m.ranking.metrics.get(cov, np.nan), m.ranking.metrics.get(acc, np.nan), s=40, color=colours(j))
        ax.annotate(m.label, (m.ranking.metrics.get(cov, np.nan), m.ranking.metrics.get(acc, np.nan)), fontsize=8)
    ax.set_xlabel("catalogue coverage")
    ax.set_ylabel(acc)
    ax.set_title("Accuracy against coverage")
    plots.append(("Beyond accuracy", _png(fig)))

    rows = [r for r in result.ablation if isinstance(r.get(acc), float)]
    if rows:
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(rows) + 1.2))
        y = np.arange(len(rows))[::-1]
        ax.barh(y, [r[acc] for r in rows], color=[colours(0) if r["variant"] == "all" else colours(1) for r in rows])
        ax.set_yticks(y, [r["variant"] for r in rows], fontsize=8)
        ax.axvline(rows[0][acc], color="k", lw=0.8, ls="--")
        ax.set_xlabel(acc)
        ax.set_title("Modality ablation")
        plots.append(("Modality ablation (dashed: all modalities)", _png(fig)))
    return plots


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _lower_is_better(key: str) -> bool:
    return key.partition("@")[0] in LOWER_IS_BETTER


def best_cells(rows: list[dict[str, Any]], columns: list[str]) -> dict[str, float]:
    """The best value of every numeric column (the lowest for :data:`LOWER_IS_BETTER` names, else the highest)."""
    out: dict[str, float] = {}
    for c in columns:
        values = [float(r[c]) for r in rows if _is_number(r.get(c))]
        if values:
            out[c] = min(values) if _lower_is_better(c) else max(values)
    return out


def _cells(row: dict[str, Any], columns: list[str], best: dict[str, float]) -> list[dict[str, Any]]:
    cells = []
    for c in columns:
        v: Any = row.get(c)
        is_best = c in best and _is_number(v) and float(v) == best[c]
        cells.append({"text": _fmt(v), "best": is_best})
    return cells


def _label(key: str) -> str:
    return {"fit_s": "fit s", "eval_s": "eval s"}.get(key, key)


def _facts(result: ExperimentResult) -> tuple[dict[str, Any], dict[str, Any]]:
    cfg = result.config
    split = result.split
    sizes = split.summary()
    if result.dataset is not None:
        summ = result.dataset.summary()
        mods = [*summ.get("item_modalities", {}), *(f"user {m}" for m in summ.get("user_modalities", {}))]
        dataset = {
            "name": cfg.dataset.get("name") or summ.get("name") or "dataset",
            "n_users": f"{summ['users']:,}",
            "n_items": f"{summ['items']:,}",
            "n_interactions": f"{summ['interactions']:,}",
            "modalities": ", ".join(mods),
        }
    else:
        dataset = {
            "name": cfg.dataset.get("name") or Path(str(cfg.split.get("file", cfg.split.get("benchmark", "")))).name,
            "n_users": f"{split.train.n_users:,}",
            "n_items": f"{split.train.n_items:,}",
            "n_interactions": f"{sum(sizes.values()):,}",
            "modalities": "",
        }
    if cfg.split.get("strategy"):
        params = cfg.split.get("params") or {}
        strategy = str(cfg.split["strategy"]) + (
            " (" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")" if params else ""
        )
    else:
        strategy = str(cfg.split.get("file") or cfg.split.get("benchmark") or "given")
    split_facts = {
        "strategy": strategy,
        "sizes": " / ".join(f"{sizes[k]:,}" if k in sizes else "–" for k in ("train", "valid", "test")),
    }
    return dataset, split_facts


def _ablation(result: ExperimentResult) -> dict[str, Any] | None:
    rows = result.ablation
    if not rows:
        return None
    skip = {"variant", "modalities", "delta", "error", "model"}
    columns = [c for c in rows[0] if c not in skip]
    for r in rows[1:]:
        columns += [c for c in r if c not in skip and c not in columns]
    best = best_cells(rows, columns)
    kmax = max(result.config.k)
    headline = next((c for c in columns if c.startswith("NDCG@")), columns[0] if columns else "")
    if f"NDCG@{kmax}" in columns:
        headline = f"NDCG@{kmax}"
    out_rows = []
    for r in rows:
        d: Any = r.get("delta")
        cells = _cells(r, columns, best) if "error" not in r else [{"text": "–", "best": False} for _ in columns]
        out_rows.append(
            {
                "variant": r["variant"],
                "cells": cells,
                "delta": f"{d:+.4f}" if _is_number(d) else ("failed: " + str(r["error"]) if "error" in r else "–"),
                "delta_class": "" if not _is_number(d) or d == 0 else ("up" if d > 0 else "down"),
                "modalities": ", ".join(r.get("modalities", [])) or "none",
            }
        )
    model = rows[0].get("model") or result.config.name
    return {
        "model": model,
        "columns": [{"key": c, "label": _label(c)} for c in columns],
        "rows": out_rows,
        "headline": headline,
    }


def _fairness(result: ExperimentResult) -> dict[str, Any] | None:
    """Per model: mean NDCG@max(k) of each user group and the exposure share of each item group, when the
    evaluation had ``user_groups`` / ``item_groups`` (``"fairness": true``); ``None`` otherwise."""
    kmax = max(result.config.k)
    metric = f"NDCG@{kmax}"
    models = [m for m in result.models if "by_user_group" in m.ranking.info or "group_exposure_share" in m.ranking.info]
    if not models:
        return None
    groups = sorted({g for m in models for g in m.ranking.info.get("by_user_group", {}).get(metric, {})}, key=str)
    n_item_groups = max(len(m.ranking.info.get("group_exposure_share", [])) for m in models)
    rows = []
    for m in models:
        by = m.ranking.info.get("by_user_group", {}).get(metric, {})
        share = list(m.ranking.info.get("group_exposure_share", []))
        rows.append(
            {
                "model": m.label,
                "groups": [_fmt(by.get(g)) for g in groups],
                "gap": _fmt(m.ranking.metrics.get(f"NDCGGap@{kmax}")),
                "shares": [_fmt(share[j]) if j < len(share) else "–" for j in range(n_item_groups)],
            }
        )
    return {
        "metric": metric,
        "groups": [str(g) for g in groups],
        "item_groups": list(range(n_item_groups)),
        "rows": rows,
    }


def render_html(result: ExperimentResult, plots: list[tuple[str, str]] | None = None) -> str:
    """The report page of ``result`` (``plots``: ``(title, base64 PNG)`` pairs; drawn when ``None``)."""
    import jinja2

    from fusionrec._version import __version__

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("fusionrec.evaluation", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    rows = result.table()
    columns = list(rows[0]) if rows else ["model"]
    for r in rows[1:]:
        columns += [c for c in r if c not in columns]
    best = best_cells(rows, columns[1:])
    dataset, split = _facts(result)
    sig = [{k: _fmt(v) for k, v in s.items()} for s in result.significance]
    n_test = max((m.ranking.info.get("n_users", 0) for m in result.models), default=0)
    failed = [f"{label} ({msg})" for label, msg in result.failed.items()]
    return env.get_template("report.html.j2").render(
        name=result.config.name,
        version=__version__,
        date=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        dataset=dataset,
        split=split,
        n_models=len(result.models),
        n_test_users=f"{n_test:,}",
        lower_better=[_label(c) for c in columns[1:] if _lower_is_better(c) and c in best],
        columns=[{"key": c, "label": _label(c)} for c in columns],
        rows=[_cells(r, columns, best) for r in rows],
        failed=failed,
        ablation=_ablation(result),
        fairness=_fairness(result),
        significance=sig,
        plots=_plots(result) if plots is None else plots,
    )


def write_report(result: ExperimentResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``results.json`` and ``report.html`` into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = result.to_json()
    json_path = out / "results.json"
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    html_path = out / "report.html"
    html_path.write_text(render_html(result))
    return {"json": json_path, "html": html_path}
