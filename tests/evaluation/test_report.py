from __future__ import annotations

import json
import re
from pathlib import Path

from fusionrec.data import Split
from fusionrec.evaluation.experiment import ExperimentConfig, run_experiment
from fusionrec.evaluation.report import best_cells, render_html, write_report

CONFIG = {
    "name": "report <unit>",
    "dataset": {},
    "split": {"strategy": "random", "params": {"seed": 0}},
    "models": [
        "MostPopular",
        {"name": "ItemKNN", "params": {"k": 20, "implicit": True}, "label": "knn <b>bold</b>"},
    ],
    "k": [5, 10],
}


def test_best_cells_direction() -> None:
    rows = [{"NDCG@10": 0.2, "RMSE": 0.9, "fit_s": 2.0}, {"NDCG@10": 0.3, "RMSE": 1.1, "fit_s": 1.0}]
    assert best_cells(rows, ["NDCG@10", "RMSE", "fit_s"]) == {"NDCG@10": 0.3, "RMSE": 0.9, "fit_s": 1.0}


def test_report_page_is_readable_on_a_phone_and_escaped(small_split: Split, tmp_path: Path) -> None:
    result = run_experiment(ExperimentConfig.from_dict(CONFIG), split=small_split)
    result.ablation = [
        {"model": "X", "variant": "all", "modalities": ["a", "b"], "NDCG@10": 0.3, "fit_s": 1.0, "delta": 0.0},
        {"model": "X", "variant": "only a", "modalities": ["a"], "NDCG@10": 0.2, "fit_s": 0.5, "delta": -0.1},
    ]
    paths = write_report(result, tmp_path / "out")
    page = paths["html"].read_text()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "@media (max-width" in page and "overflow-x: auto" in page
    # autoescaping: labels and names are text, never markup
    assert "<b>bold</b>" not in page and "knn &lt;b&gt;bold&lt;/b&gt;" in page
    assert "report &lt;unit&gt;" in page
    # header facts, not raw JSON
    assert "fusionrec 0." in page and "{&#34;" not in page and '{"' not in page
    for fact in ("users", "items", "interactions", "train / valid / test", "models"):
        assert f"<dt>{fact}</dt>" in page
    # the best NDCG@10 is highlighted
    rows = result.table()
    best = max(r["NDCG@10"] for r in rows)
    header = re.search(r"<thead><tr>(.*?)</tr></thead>", page, re.S)
    assert header is not None
    cols = re.findall(r"<th[^>]*>(.*?)</th>", header.group(1))
    j = cols.index("NDCG@10")
    body = page[header.end() : page.index("</tbody>", header.end())]
    cells = [re.findall(r"<td([^>]*)>(.*?)</td>", tr) for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S)]
    marked = [row[j][1] for row in cells if 'class="best"' in row[j][0]]
    assert marked == [f"{best:.4f}"]
    # the ablation section and its plot
    assert "Modality ablation: X" in page and "only a" in page
    assert "Modality ablation (dashed: all modalities)" in page
    data = json.loads(paths["json"].read_text())
    assert data["ablation"][1]["variant"] == "only a" and {"results", "significance", "params"} <= set(data)


def test_report_without_ablation_or_significance(small_split: Split) -> None:
    cfg = ExperimentConfig.from_dict({**CONFIG, "models": ["MostPopular"], "significance": False})
    page = render_html(run_experiment(cfg, split=small_split), plots=[])
    assert "Modality ablation" not in page and "Significance" not in page and "<h2>Results</h2>" in page
