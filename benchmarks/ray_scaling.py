"""Ray scaling on this machine: single process vs Ray with 1 and 2 worker processes, with per-stage costs.

Workloads (each configuration run ``--repeats`` times, median reported; the machine is shared, so spreads are
printed too):

* ``extract``: MiniLM sentence embeddings (fusionrec ``SentenceEncoder``, 384 dims) of ml-latest-small movies,
  text = title + genres + every tag of the movie; feature cache off so that every run encodes.
* ``score-ease``: top-10 of every user of ml-latest-small (random811 train part, 610 users x 9,724 items) with
  EASE: the broadcast is the dense 9,724 x 9,724 item-item matrix.
* ``score-als``: top-10 of every user of a synthetic catalogue (``--users`` x ``--items``) with ALS (64 factors):
  a small broadcast, many users.

Configurations: ``single`` = this process without Ray, compute threads limited to 1 (what one Ray worker gets);
``single-2t`` = this process with 2 threads (what you would run without Ray on this 2-core machine);
``ray-1`` / ``ray-2`` = a local Ray cluster (``num_cpus=2``) with 1 or 2 worker actors of one CPU each.  The Ray
cluster is started once; its start-up time is printed apart.  Scoring uses 8 user shards in both Ray
configurations.  Nothing is tuned: there is no model quality here, only time.

Run: python benchmarks/ray_scaling.py [--data-dir ../shared/data] [--quick | --smoke] [--repeats 3] [--json out.json]
(--smoke: score-ease on the smoke slice, once; tables and JSON under $FUSIONREC_BENCH_OUT/results)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import RESULTS_DIR, add_smoke, benchmark_split, check_smoke  # noqa: E402


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--data-dir", default=os.environ.get("FUSIONREC_DATA_DIR", str(HERE.parent.parent / "shared" / "data"))
    )
    p.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--texts", type=int, default=2000, help="movies encoded by MiniLM (0: all 9,742)")
    p.add_argument("--users", type=int, default=50_000, help="synthetic users for score-als")
    p.add_argument("--items", type=int, default=10_000, help="synthetic items for score-als")
    p.add_argument("--only", default="extract,score-ease,score-als", help="comma-separated workloads")
    p.add_argument("--json", default=None, help="also write the raw measurements to this JSON file")
    add_smoke(p)
    a = p.parse_args()
    check_smoke(p, a)
    a.scratch = None
    if a.smoke:  # no MiniLM (its weights load in every worker); synthetic data when the data dir is absent
        a.users, a.items, a.repeats, a.only = 500, 200, 1, "score-ease"
        a.json, a.scratch = a.json or str(RESULTS_DIR / "ray_scaling_smoke.json"), RESULTS_DIR
        a.data_dir = a.data_dir if Path(a.data_dir).is_dir() else None
    elif a.quick:
        a.texts, a.users, a.items, a.repeats = 300, 5000, 2000, 1
    return a


# ------------------------------------------------------------------------------------------------ data
def _movie_texts(data_dir: Path, n: int) -> list[str]:
    import pandas as pd

    root = data_dir / "ml-latest-small"
    movies = pd.read_csv(root / "movies.csv")
    tags = pd.read_csv(root / "tags.csv").astype({"tag": str}).groupby("movieId")["tag"].agg(" ".join)
    text = movies["title"] + " " + movies["genres"].str.replace("|", " ") + " " + movies["movieId"].map(tags).fillna("")
    out = text.str.strip().tolist()
    return out[:n] if n else out


def _synthetic_train(n_users: int, n_items: int, per_user: int = 30, seed: int = 0) -> Any:
    from fusionrec.data import Interactions

    rng = np.random.default_rng(seed)
    pop = rng.power(0.3, n_items) + 1e-3
    pop /= pop.sum()
    users = np.repeat(np.arange(n_users), per_user)
    items = rng.choice(n_items, size=len(users), p=pop)
    keys = np.unique(users.astype(np.int64) * n_items + items)
    u, i = keys // n_items, keys % n_items
    return Interactions.from_arrays(u, i, None, None, explicit=False)


# ------------------------------------------------------------------------------------------------ timing
def _median(runs: list[dict[str, Any]], key: str = "wall") -> float:
    return float(statistics.median(r[key] for r in runs))


def _repeat(fn: Callable[[], dict[str, Any]], n: int, label: str) -> list[dict[str, Any]]:
    out = []
    for j in range(n):
        r = fn()
        print(f"  {label} run {j + 1}: {r['wall']:.2f} s", file=sys.stderr, flush=True)
        out.append(r)
    return out


def _threads(n: int) -> Any:
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n)


# ------------------------------------------------------------------------------------------------ workloads
def bench_extract(args: argparse.Namespace, address: str) -> dict[str, Any]:
    import torch

    from fusionrec.distributed import ExtractionStats, extract_features_ray
    from fusionrec.features.state import encoder_to_state
    from fusionrec.features.text import SentenceEncoder

    texts = _movie_texts(Path(args.data_dir), args.texts)
    res: dict[str, Any] = {"items": len(texts), "configs": {}}
    enc = SentenceEncoder()
    t0 = time.perf_counter()
    enc.transform(texts[:2])  # weights loaded here (each Ray worker pays this once per run)
    res["weight_load_s"] = time.perf_counter() - t0
    meta, arrays = encoder_to_state(enc)
    res["state_bytes"] = sum(a.nbytes for a in arrays.values()) + len(json.dumps(meta, default=str))
    res["weights_bytes"] = int(sum(p.numel() * p.element_size() for p in enc._load().parameters()))
    ref = None

    def single(threads: int) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            nonlocal ref
            torch.set_num_threads(threads)
            t, cpu = time.perf_counter(), time.process_time()
            rows = enc.transform(texts)
            wall = time.perf_counter() - t
            ref = rows if ref is None else ref
            return {"wall": wall, "cpu": time.process_time() - cpu}

        return run

    def on_ray(workers: int) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            st = ExtractionStats()
            t = time.perf_counter()
            rows, _ = extract_features_ray(
                SentenceEncoder(), texts, address=address, batch_size=128, concurrency=workers, cache=False, stats=st
            )
            wall = time.perf_counter() - t
            if ref is not None:
                res["max_abs_diff_vs_single"] = max(
                    res.get("max_abs_diff_vs_single", 0.0), float(np.abs(rows - ref).max())
                )
            return {"wall": wall, **{f"stage_{k}": v for k, v in st.seconds.items()}, "input_bytes": st.input_bytes,
                    "output_bytes": st.output_bytes, "batches": st.batches}  # fmt: skip

        return run

    res["configs"]["single"] = _repeat(single(1), args.repeats, "extract single")
    res["configs"]["single-2t"] = _repeat(single(2), args.repeats, "extract single-2t")
    torch.set_num_threads(1)
    res["configs"]["ray-1"] = _repeat(on_ray(1), args.repeats, "extract ray-1")
    res["configs"]["ray-2"] = _repeat(on_ray(2), args.repeats, "extract ray-2")
    return res


def _single_scoring(model: Any, k: int, out: Path, threads: int) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with _threads(threads):
        t, cpu = time.perf_counter(), time.process_time()
        users = np.arange(len(model.user_id_values_))
        idx, scores = model.recommend(users, k)
        t_score, cpu_score = time.perf_counter() - t, time.process_time() - cpu
        ok = idx >= 0
        rows, cols = np.nonzero(ok)
        table = pa.table(
            {
                "user": model.user_id_values_[users[rows]],
                "item": model.item_id_values_[idx[ok]],
                "rank": (cols + 1).astype(np.int32),
                "score": scores[ok],
            }
        )
        pq.write_table(table, out)
        wall = time.perf_counter() - t
    return {"wall": wall, "stage_tasks": t_score, "stage_write": wall - t_score, "task_cpu_seconds_sum": cpu_score}


def bench_scoring(name: str, model: Any, args: argparse.Namespace, address: str) -> dict[str, Any]:
    from fusionrec.distributed import ScoringStats, batch_recommend_ray

    res: dict[str, Any] = {"users": len(model.user_id_values_), "items": int(model.n_items_), "configs": {}}
    if args.scratch:
        Path(args.scratch).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ray-scaling-", dir=args.scratch))
    t = time.perf_counter()
    saved = model.save(tmp / "model")
    res["save_s"] = time.perf_counter() - t
    res["model_bytes"] = sum(p.stat().st_size for p in saved.rglob("*") if p.is_file())

    def on_ray(workers: int) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            st = ScoringStats()
            t = time.perf_counter()
            batch_recommend_ray(
                model, None, 10, tmp / f"ray{workers}.parquet", address=address, num_workers=workers, num_shards=8,
                batch_size=1024, stats=st,
            )  # fmt: skip
            wall = time.perf_counter() - t
            return {
                "wall": wall,
                **{f"stage_{k}": v for k, v in st.seconds.items()},
                "task_seconds_sum": float(sum(st.task_seconds)),
                "task_cpu_seconds_sum": float(sum(st.task_cpu_seconds)),
                "load_seconds_max": float(max(st.load_seconds)),
                "payload_bytes": st.payload_bytes,
                "result_bytes": st.result_bytes,
                "rows": st.rows_written,
            }

        return run

    res["configs"]["single"] = _repeat(
        lambda: _single_scoring(model, 10, tmp / "single.parquet", 1), args.repeats, f"{name} single"
    )
    res["configs"]["single-2t"] = _repeat(
        lambda: _single_scoring(model, 10, tmp / "single2.parquet", 2), args.repeats, f"{name} single-2t"
    )
    res["configs"]["ray-1"] = _repeat(on_ray(1), args.repeats, f"{name} ray-1")
    res["configs"]["ray-2"] = _repeat(on_ray(2), args.repeats, f"{name} ray-2")
    import pandas as pd

    a, b = pd.read_parquet(tmp / "single.parquet"), pd.read_parquet(tmp / "ray2.parquet")
    res["same_rows_as_single"] = bool(a["item"].equals(b["item"]) and a["user"].equals(b["user"]))
    return res


# ------------------------------------------------------------------------------------------------ report
def _table(results: dict[str, Any]) -> str:
    lines = [
        "| workload | size | single (1 thread) | single (2 threads) | Ray, 1 worker | Ray, 2 workers | speed-up 1 -> 2 "
        "workers | Ray 2 workers vs single 2 threads |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results["workloads"].items():
        med = {c: _median(runs) for c, runs in r["configs"].items()}
        spread = {c: (min(x["wall"] for x in runs), max(x["wall"] for x in runs)) for c, runs in r["configs"].items()}
        size = f"{r['items']} texts" if name == "extract" else f"{r['users']} users x {r['items']} items"
        cells = [
            f"{med[c]:.2f} s ({spread[c][0]:.1f}-{spread[c][1]:.1f})" for c in ("single", "single-2t", "ray-1", "ray-2")
        ]
        lines.append(
            f"| {name} | {size} | {' | '.join(cells)} | {med['ray-1'] / med['ray-2']:.2f}x | "
            f"{med['single-2t'] / med['ray-2']:.2f}x |"
        )
    return "\n".join(lines)


def _stages(results: dict[str, Any]) -> str:
    lines = [
        "| workload | config | broadcast bytes | serialise s | put s | workers start + load s | encode / score s "
        "(wall) | task s (sum in workers) | task CPU s (sum) | results bytes | write s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results["workloads"].items():
        for c in ("ray-1", "ray-2"):
            runs = r["configs"][c]
            m = lambda key, runs=runs: _median(runs, key) if key in runs[0] else float("nan")
            if name == "extract":
                lines.append(
                    f"| {name} | {c} | {r['state_bytes']:,} (+ {r['weights_bytes'] or 0:,} weights from the package) | "
                    f"- | {m('stage_prepare'):.2f} (blocks) | {r['weight_load_s']:.1f} (per worker, measured here) | "
                    f"{m('stage_encode'):.2f} | - | - | {int(m('output_bytes')):,} | - |"
                )
            else:
                lines.append(
                    f"| {name} | {c} | {int(m('payload_bytes')):,} | {m('stage_payload'):.2f} | {m('stage_put'):.2f} | "
                    f"{m('stage_workers'):.2f} (load {m('load_seconds_max'):.2f}) | {m('stage_tasks'):.2f} | "
                    f"{m('task_seconds_sum'):.2f} | {m('task_cpu_seconds_sum'):.2f} | {int(m('result_bytes')):,} | "
                    f"{m('stage_write'):.2f} |"
                )
    return "\n".join(lines)


def main() -> None:
    args = _args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from fusionrec.distributed import init_ray, shutdown_ray

    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "workloads": {}}
    t = time.perf_counter()
    address = init_ray("local", num_cpus=2)
    results["cluster_start_s"] = time.perf_counter() - t
    results["load_average_start"] = os.getloadavg()
    only = set(args.only.split(","))
    try:
        if "extract" in only:
            results["workloads"]["extract"] = bench_extract(args, address)
        if "score-ease" in only:
            from fusionrec.models.linear import EASE

            data_dir = None if args.data_dir is None else Path(args.data_dir)
            split = benchmark_split("ml-latest-small.random811", data_dir, smoke=args.smoke)
            t = time.perf_counter()
            ease = EASE(reg=500.0).fit(split.train)
            results["ease_fit_s"] = time.perf_counter() - t
            results["workloads"]["score-ease"] = bench_scoring("score-ease", ease, args, address)
        if "score-als" in only:
            from fusionrec.models.mf.als import ALS

            train = _synthetic_train(args.users, args.items)
            t = time.perf_counter()
            als = ALS(n_factors=64, epochs=3, reg=0.1, seed=0).fit(train)
            results["als_fit_s"] = time.perf_counter() - t
            results["workloads"]["score-als"] = bench_scoring("score-als", als, args, address)
    finally:
        results["load_average_end"] = os.getloadavg()
        shutdown_ray()
    print(f"\nRay cluster start: {results['cluster_start_s']:.1f} s; load average (1, 5, 15 min) at start "
          f"{tuple(round(x, 1) for x in results['load_average_start'])}, at end "
          f"{tuple(round(x, 1) for x in results['load_average_end'])}\n")  # fmt: skip
    print("Wall time, median of", args.repeats, "runs (min-max):\n")
    print(_table(results))
    print("\nPer-stage costs (medians):\n")
    print(_stages(results))
    extra = {k: v for k, v in results.items() if k.endswith("_fit_s")}
    for name, r in results["workloads"].items():
        for key in ("max_abs_diff_vs_single", "same_rows_as_single", "model_bytes", "save_s"):
            if key in r:
                extra[f"{name}.{key}"] = r[key]
    print("\n" + json.dumps(extra, default=str))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    if args.smoke:
        (RESULTS_DIR / "ray_scaling_smoke.md").write_text(_table(results) + "\n\n" + _stages(results) + "\n")


if __name__ == "__main__":
    main()
