"""Readable reports: a JSON file and a self-contained HTML page with tables and plots."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fusionrec.evaluation.experiment import ExperimentResult

__all__ = ["write_report"]


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
    return html.escape(str(v))


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
    fig, ax = plt.subplots(figsize=(9, 3.6))
    width = 0.8 / len(models)
    x = np.arange(len(keys))
    for j, m in enumerate(models):
        ax.bar(x + j * width, [m.ranking.metrics[k] for k in keys], width, label=m.label)
    ax.set_xticks(x + 0.4 - width / 2, keys)
    ax.set_ylabel("mean over test users")
    ax.set_title(f"Accuracy at K={kmax}")
    ax.legend(fontsize=8)
    plots.append(("Accuracy by model", _png(fig)))

    ks = sorted(result.config.k)
    if len(ks) > 1:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        for ax, metric in zip(axes, ("Recall", "NDCG")):
            for m in models:
                ax.plot(ks, [m.ranking.metrics.get(f"{metric}@{k}", np.nan) for k in ks], marker="o", label=m.label)
            ax.set_xlabel("K")
            ax.set_title(f"{metric}@K")
        axes[0].legend(fontsize=8)
        plots.append(("Metrics against list length", _png(fig)))

    key = f"NDCG@{kmax}"
    data = [m.ranking.per_user[key] for m in models if key in m.ranking.per_user]
    if data:
        fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(data)), 3.2))
        ax.boxplot(data, showmeans=True)
        ax.set_xticks(range(1, len(data) + 1), names[: len(data)], rotation=20)
        ax.set_title(f"Per-user {key}")
        plots.append(("Distribution over users", _png(fig)))

    cov, acc = f"Coverage@{kmax}", f"NDCG@{kmax}"
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for m in models:
        ax.scatter(m.ranking.metrics.get(cov, np.nan), m.ranking.metrics.get(acc, np.nan), s=40)
        ax.annotate(m.label, (m.ranking.metrics.get(cov, np.nan), m.ranking.metrics.get(acc, np.nan)), fontsize=8)
    ax.set_xlabel("catalogue coverage")
    ax.set_ylabel(acc)
    ax.set_title("Accuracy against coverage")
    plots.append(("Beyond accuracy", _png(fig)))
    return plots


def write_report(result: ExperimentResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``results.json`` and ``report.html`` into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = result.to_json()
    json_path = out / "results.json"
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")

    rows = result.table()
    cols = list(rows[0]) if rows else []
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
    sig = ""
    if result.significance:
        sig_cols = list(result.significance[0])
        sig = (
            "<h2>Significance (paired over users)</h2><table><tr>"
            + "".join(f"<th>{html.escape(c)}</th>" for c in sig_cols)
            + "</tr>"
            + "".join(
                "<tr>" + "".join(f"<td>{_fmt(r[c])}</td>" for c in sig_cols) + "</tr>" for r in result.significance
            )
            + "</table>"
        )
    figs = "".join(
        f"<figure><img alt='{html.escape(t)}' src='data:image/png;base64,{b64}'/><figcaption>{html.escape(t)}</figcaption></figure>"
        for t, b64 in _plots(result)
    )
    split_info = html.escape(json.dumps(payload["split"], default=str))
    data_info = html.escape(json.dumps(payload["dataset"], default=str))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fusionrec report: {html.escape(result.config.name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1200px; }}
table {{ border-collapse: collapse; font-size: 0.85rem; margin: 1rem 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child, th:first-child {{ text-align: left; }}
figure {{ display: inline-block; margin: 0.5rem; max-width: 100%; }} img {{ max-width: 100%; }}
.scroll {{ overflow-x: auto; }} figcaption {{ font-size: 0.8rem; color: #555; }}
code {{ background: #f6f6f6; padding: 0.1rem 0.3rem; }}
</style></head><body>
<h1>fusionrec report: {html.escape(result.config.name)}</h1>
<p>Dataset <code>{data_info}</code>; split <code>{split_info}</code>.
Rankings cover all items with training (and validation) items masked; every held-out interaction is relevant.</p>
<h2>Results</h2><div class="scroll"><table><tr>{head}</tr>{body}</table></div>
{sig}
<h2>Plots</h2>{figs}
</body></html>
"""
    html_path = out / "report.html"
    html_path.write_text(page)
    return {"json": json_path, "html": html_path}
