"""Next-item recommendation: fusionrec SASRec, BERT4Rec, content SASRec, GRU4Rec, CNNLSTM vs RecBole SASRec,
BERT4Rec and GRU4Rec.

Data: ml-latest-small and ml-100k, every rating an implicit 1, split leave-last-out by
``fusionrec.data.splits.leave_last_out`` (each user's latest interaction is test, the one before it valid; equal
timestamps: the larger item index counts as later, the same rule the sequential models order their input by).

Protocol (../shared/data/README.md): full ranking over all items, the user's training items masked (and the
validation item at test time), NDCG@10 and HR@10 (binary relevance; one held-out item per user) by
``fusionrec.evaluate_ranking`` for **every** library (RecBole's full-sort scores are written to a file and read
back; RecBole's own full-sort NDCG@10 / Hit@10 are printed next to ours as a check of the convention).

* Sequence models (both libraries) are fitted once on train (``--epochs`` passes over every next-item target,
  full softmax / cross-entropy, the same ``max_len`` = 50), chosen on valid by NDCG@10 over a grid of the same
  size per library (learning rate 0.001 / 0.005: RecBole's default and fusionrec's), and tested **without
  refitting**: each user's history is train + the validation item (RecBole's own leave-one-out test does exactly
  this; fusionrec re-encodes the longer sequences with ``refresh_histories``).  Other hyper-parameters are each
  library's defaults (RecBole: SASRec 2 blocks, 2 heads, 64-d, inner 256, dropout 0.5, batch 2048; GRU4Rec 64-d
  embedding, 128-d GRU, dropout 0.3; fusionrec: its defaults, batch 128 windows of 51 items).
* SASRec(use_content=True) and CNNLSTM use the learning rate chosen for plain SASRec / GRU4Rec (grid of one, to
  keep the run within the machine's budget).  SASRec content: title TF-IDF (2048 terms) + genre multi-hot from
  ``build_side_info`` of the loader's modalities.  CNNLSTM (ml-latest-small only: ML-100K's ids are not ML-1M's,
  so it has no posters): EfficientNet-Lite0 vectors of the ml-posters posters (2,943 of the 9,724 items; the others
  get the zero = mean row).
* EASE (reg grid chosen on valid) and MostPopular are refitted on train + valid for the test.

Both libraries run torch with ``--threads`` intra-op threads; fit times are wall-clock seconds of the fit alone
(RecBole: ``Trainer.fit`` with no validation during training) in the same run.  RecBole 1.2.1 runs in its own
environment (``--recbole-python``, default .bench/recbole-venv/bin/python, made by scripts/bench_setup.sh) through a subprocess; the split is
written as RecBole atomic files whose timestamp is the interaction's rank in the user's time order (so RecBole's
leave-one-out "TO" split is exactly ours).

* ``fusionrec SASRec every-prefix`` / ``fusionrec GRU4Rec every-prefix``: the same models with
  ``every_prefix=True`` (RecBole's augmentation: every prefix of every sequence a training example), the learning
  rate chosen for the windows row (grid of one: a prefix epoch costs ~10x (SASRec, GRU4Rec) to ~40x (BERT4Rec) a windows epoch).

``--equal``: the head-to-head of issue 22 at equal epochs and RecBole's default budgets on both sides
(:data:`EQUAL_BUDGET`: hidden 64, 2 layers, 2 heads, ``max_len`` 50, batch 2048, RecBole's dropout, fusionrec on
every prefix), the same ``--lrs`` grid chosen on valid per library (widened at an edge, ``--widen``), ``--seeds`` at
the chosen rates, our fit and RecBole's alternating, per-user test NDCG@10 kept for a paired test over users.

RecBole's cost (profiled on ml-100k, SASRec, 1 thread): its train loader yields an epoch's 48 batches in 0.23
CPU-s and ``Trainer.fit(valid_data=None)`` runs no validation, so its ~230+ CPU-s per epoch are the network itself:
every prefix (97k per epoch) is its own length-50 sequence, i.e. 4.9M Transformer positions per epoch with a
256-wide GELU feed-forward block and dropout 0.5 on every activation; backward is ~60% of it.

Run: python benchmarks/sequential.py [--data-dir ../shared/data] [--epochs 30] [--threads 2] [--quick] [--smoke]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
RECBOLE_GRIDS = {
    "SASRec": [{"learning_rate": 0.001}, {"learning_rate": 0.005}],
    "GRU4Rec": [{"learning_rate": 0.001}, {"learning_rate": 0.005}],
    "BERT4Rec": [{"learning_rate": 0.001}, {"learning_rate": 0.005}],
}
OUR_LRS = [0.001, 0.005]
EASE_REGS = [1000.0, 5000.0, 20000.0]
MAX_LEN = 50


# ---------------------------------------------------------------------- RecBole worker (runs in its own venv)
def recbole_worker(config_path: str) -> None:
    """Train one RecBole model on the atomic files named in ``config_path``; write scores and timings."""
    import torch

    # numpy 2 removed aliases that RecBole 1.2.1 still touches (its compatibility_settings assigns np.float = np.float_)
    for alias, target in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if alias not in np.__dict__:
            setattr(np, alias, target)
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, init_seed

    job = json.loads(Path(config_path).read_text())
    torch.set_num_threads(int(job["threads"]))
    params = {
        "data_path": job["data_path"],
        "checkpoint_dir": job["checkpoint_dir"],
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "TIME_FIELD": "timestamp",
        "MAX_ITEM_LIST_LENGTH": MAX_LEN,
        "loss_type": "CE",
        "train_neg_sample_args": None,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "metrics": ["Hit", "NDCG"],
        "topk": [10],
        "valid_metric": "NDCG@10",
        "epochs": int(job["epochs"]),
        "eval_step": int(job["epochs"]) + 1,
        "stopping_step": int(job["epochs"]) + 1,
        "device": job.get("device", "cpu"),
        "use_gpu": job.get("device", "cpu") != "cpu",
        "gpu_id": "0",
        "seed": int(job["seed"]),
        "reproducibility": True,
        "show_progress": False,
        "state": "ERROR",
        "worker": 0,
        "user_inter_num_interval": "[0,inf)",
        "item_inter_num_interval": "[0,inf)",
        **job["params"],
    }
    config = Config(model=job["model"], dataset=job["dataset"], config_dict=params)
    init_seed(config["seed"], config["reproducibility"])
    torch.set_num_threads(int(job["threads"]))
    t0 = time.perf_counter()
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    print(f"recbole data preparation {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
    device = job.get("device", "cpu")
    model = get_model(config["model"])(config, train_data.dataset).to(device)
    from recbole.trainer import Trainer

    trainer = Trainer(config, model)
    start, cpu = time.perf_counter(), time.process_time()
    trainer.fit(train_data, valid_data=None, saved=False, show_progress=False)
    fit_seconds, fit_cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"recbole fit {fit_seconds:.1f}s", file=sys.stderr, flush=True)
    model.eval()
    n_users, n_items = int(job["n_users"]), int(job["n_items"])
    item_tokens = dataset.id2token(dataset.iid_field, np.arange(1, dataset.item_num))
    item_cols = np.array([int(t) for t in item_tokens], dtype=np.int64)
    out: dict[str, Any] = {"fit_seconds": fit_seconds, "fit_cpu_seconds": fit_cpu}
    with open(Path(job["data_path"]).parent / "recbole_fit_times.jsonl", "a") as log:  # outlives the temp folder
        log.write(
            json.dumps(
                {k: job[k] for k in ("dataset", "model", "params", "epochs")}
                | {"fit_s": fit_seconds, "fit_cpu_s": fit_cpu}
            )
            + "\n"
        )
    for name, loader in (("valid", valid_data), ("test", test_data)):
        scores = np.full((n_users, n_items), -np.inf, dtype=np.float32)
        with torch.no_grad():
            for batch in loader:
                interaction = batch[0]
                s = model.full_sort_predict(interaction.to(device)).view(-1, dataset.item_num).cpu().numpy()
                users = dataset.id2token(dataset.uid_field, interaction[dataset.uid_field].numpy())
                rows = np.array([int(u) for u in users], dtype=np.int64)
                scores[rows[:, None], item_cols[None, :]] = s[:, 1:]
        out[f"{name}_scores"] = scores
        own = trainer.evaluate(loader, load_best_model=False, show_progress=False)
        out[f"{name}_recbole"] = json.dumps({k: float(v) for k, v in own.items()})
    np.savez(job["out"], **out)


# ---------------------------------------------------------------------- shared by both modes
def metrics(model: Any, train: Any, held: Any, exclude: list[Any], per_user: bool = False) -> dict[str, Any]:
    """NDCG@10 and HR@10 of ``model`` on ``held`` by the one evaluator, ``train`` (and ``exclude``) masked;
    ``per_user``: also the per-user NDCG@10 list (aligned with the evaluated users, for paired tests)."""
    from fusionrec.evaluation import evaluate_ranking

    r = evaluate_ranking(model, train, held, k=10, metrics=("ndcg", "hit_rate"), exclude=[train, *exclude])
    out: dict[str, Any] = {"NDCG@10": float(r.metrics["NDCG@10"]), "HR@10": float(r.metrics["HitRate@10"])}
    if per_user:
        out["users"] = np.asarray(r.users).tolist()
        out["per_user_NDCG@10"] = np.round(np.asarray(r.per_user["NDCG@10"], dtype=float), 6).tolist()
    return out


def fixed(scores: np.ndarray, train: Any) -> Any:
    """A fixed score matrix (a peer's full-sort scores) as a Recommender, so the one evaluator ranks it."""
    from fusionrec.models import Recommender

    class Scores(Recommender):
        def __init__(self, scores: np.ndarray | None = None) -> None:
            self.scores = scores

        def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
            assert self.scores is not None
            s = self.scores[np.asarray(users, dtype=np.int64)]
            return s if items is None else s[:, items]

    m = Scores(np.nan_to_num(scores, neginf=-1e30))
    m.n_users_, m.n_items_, m.seen_ = train.n_users, train.n_items, train.matrix
    return m


def run_recbole(
    python: str,
    tmp: Path,
    name: str,
    model: str,
    params: dict[str, Any],
    epochs: int,
    threads: int,
    seed: int,
    train: Any,
    device: str = "cpu",
) -> Any:
    """One RecBole fit in its own environment on the atomic files ``tmp/name`` (:func:`write_atomic`); its
    full-sort valid / test scores, fit times and own metrics (``np.load`` of the worker's output), or None when the
    worker failed (its output printed)."""
    job: dict[str, Any] = {
        "data_path": str(tmp), "dataset": name, "model": model, "params": params, "epochs": epochs,
        "threads": threads, "seed": seed, "n_users": train.n_users, "n_items": train.n_items, "device": device,
        "checkpoint_dir": str(tmp / "ckpt"), "out": str(tmp / "out.npz"),
    }  # fmt: skip
    cfg = tmp / "job.json"
    cfg.write_text(json.dumps(job))
    proc = subprocess.run(
        [python, str(Path(__file__).resolve()), "--recbole-worker", str(cfg)],
        capture_output=True, text=True, cwd=tmp,
        env={**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)},
    )  # fmt: skip
    if proc.returncode:
        print(proc.stdout[-3000:], proc.stderr[-6000:], flush=True)
        print(f"RecBole {model} failed (exit {proc.returncode})", flush=True)
        return None
    return np.load(job["out"])


#: equal budgets for the head-to-head (``--equal``): RecBole 1.2.1's documented defaults (properties/model/*.yaml,
#: overall.yaml: hidden 64, 2 layers, 2 heads, max_len 50, train batch 2048; SASRec dropout 0.5, BERT4Rec 0.2 and
#: mask ratio 0.2) on both sides, and fusionrec on every prefix as RecBole trains
EQUAL_BUDGET: dict[str, dict[str, Any]] = {
    "SASRec": {"n_factors": 64, "n_layers": 2, "n_heads": 2, "dropout": 0.5, "batch_size": 2048, "every_prefix": True},
    "BERT4Rec": {
        "n_factors": 64, "n_layers": 2, "n_heads": 2, "dropout": 0.2, "mask_prob": 0.2, "batch_size": 2048,
        "every_prefix": True,
    },
}  # fmt: skip


def equal_epochs(args: Any, data_dir: Path) -> dict[str, Any]:
    """fusionrec vs RecBole at equal epochs and budgets (:data:`EQUAL_BUDGET`), per dataset and model: the same
    learning-rate grid on both sides (seed 0; each library's rate chosen on valid NDCG@10, a choice at the grid's
    edge widens the grid on both sides), then the other seeds at the chosen rates.  Each of our fits is followed by
    RecBole's (interleaved, so the fit-time ratio of a pair is measured under the same load).  The summary holds
    test NDCG@10 mean ± half-range over seeds, a paired test over users of the seed-mean per-user test NDCG@10,
    and the fit CPU ratio ours / RecBole per pair."""
    sys.path.insert(0, str(HERE))
    from _common import SMOKE_ITEMS, SMOKE_USERS, _extend, machine, mean_spread, paired, shrink, smoke_dataset

    from fusionrec.data import Interactions
    from fusionrec.data.datasets import load_dataset
    from fusionrec.data.splits import leave_last_out
    from fusionrec.models.sequential import BERT4Rec, SASRec

    classes = {"SASRec": SASRec, "BERT4Rec": BERT4Rec}
    E, T = int(args.epochs), int(args.threads)
    lrs = [float(x) for x in (args.lrs or "0.001,0.003").split(",")]
    seeds = [int(x) for x in args.seeds.split(",")]
    extra = json.loads(args.our_options) if args.our_options else {}
    results: dict[str, Any] = {
        "mode": "equal", "epochs": E, "threads": T, "lrs": lrs, "seeds": seeds, "budget": EQUAL_BUDGET,
        "our_options": extra, "max_len": MAX_LEN, "machine": machine(), "datasets": {},
    }  # fmt: skip

    def save() -> None:
        Path(args.out).write_text(json.dumps(results, indent=1))

    def one_model(ds_name: str, name: str, tmp: str, split: Any, history: Any, model_name: str) -> None:
        train, valid, test = split.train, split.valid, split.test
        out_ds: dict[str, Any] = results["datasets"][ds_name]
        trials: list[dict[str, Any]] = []
        out_ds[model_name] = {"trials": trials}

        def ours(lr: float, seed: int) -> dict[str, Any]:
            params = {**EQUAL_BUDGET[model_name], **extra, "max_len": MAX_LEN, "epochs": E, "lr": lr}
            model = classes[model_name](**params, threads=T, seed=seed)
            t0, c0 = time.perf_counter(), time.process_time()
            model.fit(train)
            fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
            v = metrics(model, train, valid, [])
            model.refresh_histories(history)
            t = metrics(model, train, test, [valid], per_user=True)
            return {"fit_s": fit_s, "fit_cpu_s": fit_cpu, "valid": v, "test": t}

        def theirs(lr: float, seed: int) -> dict[str, Any] | None:
            o = run_recbole(args.recbole_python, Path(tmp), name, model_name, {"learning_rate": lr}, E, T, seed, train)
            if o is None:
                return None
            v = metrics(fixed(o["valid_scores"], train), train, valid, [])
            t = metrics(fixed(o["test_scores"], train), train, test, [valid], per_user=True)
            return {
                "fit_s": float(o["fit_seconds"]), "fit_cpu_s": float(o["fit_cpu_seconds"]), "valid": v,
                "test": t, "recbole_own_test": json.loads(str(o["test_recbole"])),
            }  # fmt: skip

        def pair(lr_ours: float, lr_theirs: float, seed: int) -> None:
            for lib, fn, lr in (("fusionrec", ours, lr_ours), ("recbole", theirs, lr_theirs)):
                if lib in args.equal_skip:
                    continue
                r = fn(lr, seed)
                if r is None:
                    continue
                trials.append({"lib": lib, "lr": lr, "seed": seed, **r})
                print(
                    f"  {ds_name} {model_name} {lib:9s} lr={lr:g} seed={seed}: valid NDCG@10 "
                    f"{r['valid']['NDCG@10']:.4f} test {r['test']['NDCG@10']:.4f} fit CPU {r['fit_cpu_s']:.1f}s "
                    f"(wall {r['fit_s']:.1f}s)",
                    flush=True,
                )
                save()

        def chosen(lib: str) -> float | None:
            grid = [t for t in trials if t["lib"] == lib and t["seed"] == seeds[0]]
            return max(grid, key=lambda t: t["valid"]["NDCG@10"])["lr"] if grid else None

        grid = list(lrs)
        for lr in grid:
            pair(lr, lr, seeds[0])
        for _ in range(int(args.widen)):  # a choice at the edge: the next rate on both sides
            new = [_extend(grid, c) for c in {chosen("fusionrec"), chosen("recbole")} if c is not None]
            new = sorted({float(f"{x:.6g}") for x in new if x is not None} - set(grid))
            if not new:
                break
            for lr in new:
                print(f"  {model_name}: a choice at the grid edge {grid}; widened with lr={lr:g}", flush=True)
                grid.append(lr)
                pair(lr, lr, seeds[0])
        lr_o, lr_r = chosen("fusionrec") or grid[0], chosen("recbole") or grid[0]
        for seed in seeds[1:]:
            pair(lr_o, lr_r, seed)
        out_ds[model_name]["summary"] = summarize(trials, {"fusionrec": lr_o, "recbole": lr_r}, paired,
                                                  mean_spread)  # fmt: skip
        save()
        print(json.dumps(out_ds[model_name]["summary"], indent=1), flush=True)

    for ds_name in [x.strip() for x in args.datasets.split(",") if x.strip()]:
        if args.smoke:
            have = (data_dir / ds_name).is_dir()
            ds = load_dataset(ds_name, data_dir=data_dir) if have else smoke_dataset()
            split = shrink(leave_last_out(ds.interactions.binarize()), SMOKE_USERS, SMOKE_ITEMS)
        else:
            split = leave_last_out(load_dataset(ds_name, data_dir=data_dir).interactions.binarize())
        train, valid, test = split.train, split.valid, split.test
        assert valid is not None
        history = Interactions.concat([train, valid])
        print(f"\n## {ds_name}: {train.n_users} users, {train.n_items} items, train {train.nnz}", flush=True)
        results["datasets"].setdefault(ds_name, {})
        with tempfile.TemporaryDirectory(prefix="recbole-") as tmp:
            name = ds_name.replace("-", "_")
            write_atomic(Path(tmp), name, train, valid, test)
            for model_name in [x.strip() for x in args.models.split(",") if x.strip()]:
                one_model(ds_name, name, tmp, split, history, model_name)
    return results


def summarize(trials: list[dict[str, Any]], lr: dict[str, float], paired: Any, mean_spread: Any) -> dict[str, Any]:
    """Per library at its chosen rate: test NDCG@10 / HR@10 over seeds, valid NDCG@10 by rate (first seed), fit CPU;
    the paired test over users (seed-mean per-user test NDCG@10, users both sides evaluated) and fit CPU ratios."""
    out: dict[str, Any] = {}
    per_user: dict[str, dict[int, float]] = {}
    by_seed: dict[str, dict[int, float]] = {}
    for lib in ("fusionrec", "recbole"):
        runs = [t for t in trials if t["lib"] == lib and t["lr"] == lr[lib]]
        if not runs:
            continue
        first = min(t["seed"] for t in trials if t["lib"] == lib)
        ndcg = [t["test"]["NDCG@10"] for t in runs]
        out[lib] = {
            "lr": lr[lib],
            "valid_by_lr": {str(t["lr"]): round(t["valid"]["NDCG@10"], 4) for t in trials
                            if t["lib"] == lib and t["seed"] == first},
            "seeds": [t["seed"] for t in runs],
            "valid_NDCG@10": mean_spread([t["valid"]["NDCG@10"] for t in runs]),
            "test_NDCG@10": mean_spread(ndcg),
            "test_HR@10": mean_spread([t["test"]["HR@10"] for t in runs]),
            "test_NDCG@10_mean": float(np.mean(ndcg)),
            "fit_cpu_s": [round(t["fit_cpu_s"], 1) for t in runs],
        }  # fmt: skip
        sums: dict[int, list[float]] = {}
        for t in runs:
            for u, x in zip(t["test"]["users"], t["test"]["per_user_NDCG@10"], strict=True):
                sums.setdefault(int(u), []).append(float(x))
        per_user[lib] = {u: float(np.mean(v)) for u, v in sums.items()}
        by_seed[lib] = {t["seed"]: t["fit_cpu_s"] for t in runs}
    if len(per_user) == 2:
        users = sorted(set(per_user["fusionrec"]) & set(per_user["recbole"]))
        a = np.array([per_user["fusionrec"][u] for u in users])
        b = np.array([per_user["recbole"][u] for u in users])
        out["paired_ours_minus_recbole"] = paired(a, b)
        ratios = [
            by_seed["fusionrec"][s] / by_seed["recbole"][s] for s in by_seed["fusionrec"] if s in by_seed["recbole"]
        ]
        out["fit_cpu_ratio_ours_over_recbole"] = [round(r, 3) for r in ratios]
    return out


# ---------------------------------------------------------------------- the benchmark
def write_atomic(path: Path, name: str, train: Any, valid: Any, test: Any) -> None:
    """``<path>/<name>/<name>.inter``: every interaction with its rank in the user's time order as timestamp."""
    from fusionrec.data import Interactions
    from fusionrec.models.sequential import user_sequences

    full = Interactions.concat([train, valid, test])
    d = path / name
    d.mkdir(parents=True, exist_ok=True)
    with open(d / f"{name}.inter", "w") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for u, seq in enumerate(user_sequences(full)):
            f.writelines(f"{u}\t{int(i)}\t{r}\n" for r, i in enumerate(seq.tolist()))


def main() -> None:
    sys.path.insert(0, str(HERE))
    import argparse

    from _common import OUT, SMOKE_ITEMS, SMOKE_USERS, add_smoke, check_smoke, machine, shrink, smoke_dataset

    from fusionrec.data import Interactions
    from fusionrec.data.datasets import load_dataset
    from fusionrec.data.splits import leave_last_out
    from fusionrec.features import build_side_info
    from fusionrec.models.baselines import MostPopular
    from fusionrec.models.linear import EASE
    from fusionrec.models.sequential import CNNLSTM, BERT4Rec, GRU4Rec, SASRec

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data-dir", default=os.environ.get("FUSIONREC_DATA_DIR", str(HERE.parent.parent / "shared" / "data"))
    )
    parser.add_argument("--datasets", default="ml-latest-small,ml-100k")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--recbole-python", default=str(HERE.parent / ".bench" / "recbole-venv" / "bin" / "python"))
    parser.add_argument("--skip", default="", help="comma separated rows to leave out (e.g. RecBole GRU4Rec)")
    parser.add_argument(
        "--grid", type=int, choices=(1, 2), default=2,
        help="learning rates tried per sequence model: 2 = {0.001, 0.005} for both libraries; 1 = 0.005 only for "
        "both (fusionrec's default; better than RecBole's 0.001 on a budget of a few epochs), for a loaded machine",
    )  # fmt: skip
    parser.add_argument(
        "--device", default="cpu",
        help="where both libraries train (cpu, cuda); scoring is read back the same way. Fit times are only "
        "comparable between runs on the same device",
    )  # fmt: skip
    parser.add_argument(
        "--lrs", default="",
        help="comma separated learning rates replacing --grid for both libraries (e.g. one grid point per "
        "process; combine the processes' outputs with --merge)",
    )  # fmt: skip
    parser.add_argument(
        "--merge", nargs="+", default=None,
        help="combine result files of runs over parts of the grid: per dataset and model the row with the best "
        "valid NDCG@10 is kept; writes --out and prints the table",
    )  # fmt: skip
    parser.add_argument(
        "--equal", action="store_true",
        help="fusionrec vs RecBole SASRec / BERT4Rec at equal epochs and budgets (RecBole's defaults), the same lr "
        "grid (--lrs, default 0.001,0.003) chosen on valid and widened at an edge, --seeds at the chosen rates, "
        "a paired test over users, interleaved fits",
    )  # fmt: skip
    parser.add_argument("--models", default="SASRec,BERT4Rec", help="--equal: the models")
    parser.add_argument("--seeds", default="0,1,2", help="--equal: training seeds (the first one picks the lr)")
    parser.add_argument("--widen", type=int, default=1, help="--equal: grid extensions at an edge")
    parser.add_argument("--our-options", default="", help="--equal: JSON of fusionrec parameters to override")
    parser.add_argument("--equal-skip", default="", help="--equal: a library to leave out (fusionrec, recbole)")
    parser.add_argument("--quick", action="store_true", help="2 epochs, ml-100k only")
    add_smoke(parser)
    parser.add_argument("--out", default=None, help="results JSON (default: results/sequential.json)")
    args = parser.parse_args()
    check_smoke(parser, args)
    args.out = args.out or str(OUT / "results" / "sequential.json")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    if args.merge:
        merged = merge_results([json.loads(Path(p).read_text()) for p in args.merge])
        Path(args.out).write_text(json.dumps(merged, indent=1))
        print(table(merged), flush=True)
        return
    if args.quick:
        args.epochs, args.datasets = 2, "ml-100k"
    data_dir = Path(args.data_dir)
    if args.equal:
        table_equal(equal_epochs(args, data_dir))
        return
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.smoke:  # seconds: 1 epoch, a tiny slice (or the synthetic data), no peer, no content rows
        args.epochs, args.lrs = 1, "0.005"
        skip |= {"fusionrec SASRec+content", "fusionrec CNNLSTM", *(f"RecBole {m}" for m in RECBOLE_GRIDS)}
    E, T = int(args.epochs), int(args.threads)
    our_lrs = OUR_LRS if args.grid == 2 else [0.005]
    recbole_grids = {k: v if args.grid == 2 else v[1:] for k, v in RECBOLE_GRIDS.items()}
    if args.lrs:
        our_lrs = [float(x) for x in args.lrs.split(",")]
        recbole_grids = {k: [{"learning_rate": lr} for lr in our_lrs] for k in RECBOLE_GRIDS}
    print(f"machine: {machine()}  epochs={E} threads={T} device={args.device}", flush=True)
    results: dict[str, Any] = {
        "epochs": E, "threads": T, "grid": args.grid, "lrs": our_lrs, "device": args.device, "machine": machine(),
        "datasets": {},
    }  # fmt: skip

    def run(ds_name: str) -> None:
        if args.smoke:
            have_data = (data_dir / ds_name).is_dir()
            ds = load_dataset(ds_name, data_dir=data_dir) if have_data else smoke_dataset()
            split = shrink(leave_last_out(ds.interactions.binarize()), SMOKE_USERS, SMOKE_ITEMS)
        else:
            ds = load_dataset(ds_name, data_dir=data_dir)
            split = leave_last_out(ds.interactions.binarize())
        train, valid, test = split.train, split.valid, split.test
        assert valid is not None
        history = Interactions.concat([train, valid])
        print(f"\n## {ds_name}: {train.n_users} users, {train.n_items} items, train {train.nnz}", flush=True)
        side = None
        if "fusionrec SASRec+content" not in skip:
            side, _ = build_side_info(ds, encoders={"release_date": None, "links": None}, cache=True)
            content = {k: side.item_features[k].shape[1] for k in side.item_features}
            print(f"content modalities: {content}", flush=True)
        rows: dict[str, dict[str, Any]] = {}

        def record(
            label: str,
            lib: str,
            params: dict[str, Any],
            valid_m: dict[str, float],
            test_m: dict[str, float],
            fit_s: float,
            extra: dict[str, Any] | None = None,
        ) -> None:
            rows[label] = {
                "lib": lib,
                "params": params,
                "valid": valid_m,
                "test": test_m,
                "fit_s": fit_s,
                **(extra or {}),
            }
            results["datasets"][ds_name] = rows
            Path(args.out).write_text(json.dumps(results, indent=1))
            print(
                f"{label:28s} valid NDCG@10 {valid_m['NDCG@10']:.4f}  test NDCG@10 {test_m['NDCG@10']:.4f} HR@10 {test_m['HR@10']:.4f}  fit {fit_s:.1f}s  {params}",
                flush=True,
            )

        # ---- fusionrec sequence models: fit on train, choose on valid, test with train+valid histories
        def ours(label: str, factory: Any, grid: list[dict[str, Any]], side_info: Any = None) -> dict[str, Any]:
            if label in skip:
                return {}
            best: tuple[float, Any, dict[str, Any], dict[str, float], float, float] | None = None
            fits = []
            for p in grid:
                t0, c0 = time.perf_counter(), time.process_time()
                model = factory(**p).fit(train, side_info)
                fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
                fits.append(fit_s)
                v = metrics(model, train, valid, [])
                print(f"  {label} {p}: valid NDCG@10 {v['NDCG@10']:.4f} (fit {fit_s:.1f}s)", flush=True)
                if best is None or v["NDCG@10"] > best[0]:
                    best = (v["NDCG@10"], model, p, v, fit_s, fit_cpu)
            assert best is not None
            _, model, p, v, fit_s, fit_cpu = best
            model.refresh_histories(history)
            test_m = metrics(model, train, test, [valid])
            record(label, "fusionrec", p, v, test_m, fit_s, {"grid_fit_s": fits, "fit_cpu_s": fit_cpu})
            return p

        max_len = 10 if args.smoke else MAX_LEN
        common: dict[str, Any] = {"epochs": E, "threads": T, "max_len": max_len, "seed": 0, "device": args.device}
        lr_grid = [{"lr": lr} for lr in our_lrs]
        p_sas = ours("fusionrec SASRec", lambda **p: SASRec(**common, **p), lr_grid)
        if p_sas:
            ours("fusionrec SASRec+content", lambda **p: SASRec(**common, use_content=True, **p), [p_sas], side)
        # every prefix of every sequence (RecBole's augmentation) at the windows row's learning rate
        prefixes = {**common, "every_prefix": True}
        ours("fusionrec SASRec every-prefix", lambda **p: SASRec(**prefixes, **p), [p_sas or lr_grid[-1]])
        p_bert = ours("fusionrec BERT4Rec", lambda **p: BERT4Rec(**common, **p), lr_grid)
        ours("fusionrec BERT4Rec every-prefix", lambda **p: BERT4Rec(**prefixes, **p), [p_bert or lr_grid[-1]])
        p_gru = ours("fusionrec GRU4Rec", lambda **p: GRU4Rec(**common, **p), lr_grid)
        ours("fusionrec GRU4Rec every-prefix", lambda **p: GRU4Rec(**prefixes, **p), [p_gru or lr_grid[-1]])
        if ds_name == "ml-latest-small" and "fusionrec CNNLSTM" not in skip:
            images = poster_side(data_dir, train)
            ours("fusionrec CNNLSTM", lambda **p: CNNLSTM(**common, **p), [p_gru or {"lr": 0.005}], images)

        # ---- RecBole, same split through atomic files, scored by our evaluator
        with tempfile.TemporaryDirectory(prefix="recbole-") as tmp:
            name = ds_name.replace("-", "_")
            write_atomic(Path(tmp), name, train, valid, test)
            for model_name, grid in recbole_grids.items():
                label = f"RecBole {model_name}"
                if label in skip:
                    continue
                best_r: tuple[float, dict[str, Any], dict[str, Any]] | None = None
                fits = []
                for p in grid:
                    out = run_recbole(args.recbole_python, Path(tmp), name, model_name, p, E, T, 0, train, args.device)
                    if out is None:
                        continue
                    fit_s = float(out["fit_seconds"])
                    fits.append(fit_s)
                    v = metrics(fixed(out["valid_scores"], train), train, valid, [])
                    own_v = json.loads(str(out["valid_recbole"]))
                    print(
                        f"  {label} {p}: valid NDCG@10 {v['NDCG@10']:.4f} (RecBole's own {own_v}) fit {fit_s:.1f}s",
                        flush=True,
                    )
                    if best_r is None or v["NDCG@10"] > best_r[0]:
                        t = metrics(fixed(out["test_scores"], train), train, test, [valid])
                        own_t = json.loads(str(out["test_recbole"]))
                        cpu_s = float(out["fit_cpu_seconds"]) if "fit_cpu_seconds" in out else None
                        best_r = (
                            v["NDCG@10"],
                            p,
                            {"valid": v, "test": t, "fit_s": fit_s, "fit_cpu_s": cpu_s, "own": own_t},
                        )
                if best_r is None:
                    continue
                r = best_r[2]
                record(
                    label,
                    "recbole",
                    best_r[1],
                    r["valid"],
                    r["test"],
                    r["fit_s"],
                    {"grid_fit_s": fits, "fit_cpu_s": r["fit_cpu_s"], "recbole_own_test": r["own"]},
                )
        # ---- non-sequential: EASE (reg on valid) and MostPopular, refitted on train + valid for the test
        if "fusionrec EASE" in skip:
            results["datasets"][ds_name] = rows
            return
        # reg chosen on valid; a choice at the grid's edge extends the grid by factors of 4 (up to 3 steps)
        ease_valid = {reg: metrics(EASE(reg=reg).fit(train), train, valid, [])["NDCG@10"] for reg in EASE_REGS}
        for _ in range(3):
            best_e = max(ease_valid, key=ease_valid.__getitem__)
            edge = min(ease_valid) if best_e == min(ease_valid) else max(ease_valid) if best_e == max(ease_valid) else 0
            if not edge:
                break
            reg = edge / 4 if edge == min(ease_valid) else edge * 4
            ease_valid[reg] = metrics(EASE(reg=reg).fit(train), train, valid, [])["NDCG@10"]
            print(f"  EASE reg {best_e} at the grid edge: tried {reg} (valid {ease_valid[reg]:.4f})", flush=True)
        best_e = max(ease_valid, key=ease_valid.__getitem__)
        v = metrics(EASE(reg=best_e).fit(train), train, valid, [])
        t0 = time.perf_counter()
        ease = EASE(reg=best_e).fit(history)
        record(
            "fusionrec EASE",
            "fusionrec",
            {"reg": best_e, "grid_valid": {str(k): round(x, 4) for k, x in sorted(ease_valid.items())}},
            v,
            metrics(ease, history, test, []),
            time.perf_counter() - t0,
        )
        pop_v = metrics(MostPopular().fit(train), train, valid, [])
        t0 = time.perf_counter()
        pop = MostPopular().fit(history)
        record("MostPopular", "fusionrec", {}, pop_v, metrics(pop, history, test, []), time.perf_counter() - t0)

        results["datasets"][ds_name] = rows
        Path(args.out).write_text(json.dumps(results, indent=1))

    for name in [s.strip() for s in args.datasets.split(",") if s.strip()]:
        run(name)

    print("\n" + table(results), flush=True)


def table_equal(results: dict[str, Any]) -> None:
    """Print the ``--equal`` summary as a Markdown table."""
    print("| dataset | model | lib | lr (valid NDCG@10 by lr) | test NDCG@10 | test HR@10 | fit CPU s | paired p |")
    print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: |")
    for ds_name, models in results["datasets"].items():
        for model_name, r in models.items():
            s = r.get("summary", {})
            p = s.get("paired_ours_minus_recbole", {})
            for lib in ("fusionrec", "recbole"):
                if lib not in s:
                    continue
                x = s[lib]
                pv = f"t {p['t_p']:.3g}, W {p['wilcoxon_p']:.3g}" if p and lib == "fusionrec" else ""
                print(
                    f"| {ds_name} | {model_name} | {lib} | {x['lr']:g} ({x['valid_by_lr']}) | {x['test_NDCG@10']} "
                    f"| {x['test_HR@10']} | {x['fit_cpu_s']} | {pv} |"
                )
            if "fit_cpu_ratio_ours_over_recbole" in s:
                print(f"fit CPU ratio ours / RecBole ({ds_name} {model_name}): {s['fit_cpu_ratio_ours_over_recbole']}")


def merge_results(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from runs over parts of the grid: per dataset and model the row with the best valid NDCG@10
    (chosen on valid, as one run over the whole grid would); each kept row lists the valid NDCG@10 of every grid
    point it was chosen from."""
    out: dict[str, Any] = {k: v for k, v in parts[0].items() if k != "datasets"}
    out["lrs"] = sorted({lr for p in parts for lr in p.get("lrs", [])})
    out["datasets"] = {}
    for part in parts:
        for ds_name, rows in part["datasets"].items():
            kept = out["datasets"].setdefault(ds_name, {})
            for label, row in rows.items():
                tried = [
                    *kept.get(label, {}).get("grid_valid", []),
                    {**row["params"], "valid": row["valid"]["NDCG@10"]},
                ]
                if label not in kept or row["valid"]["NDCG@10"] > kept[label]["valid"]["NDCG@10"]:
                    kept[label] = dict(row)
                kept[label]["grid_valid"] = tried
    return out


def poster_side(data_dir: Path, train: Any) -> Any:
    """SideInfo with the EfficientNet-Lite0 poster vectors of ml-latest-small's items (ml-posters; cached)."""
    from fusionrec.data.datasets.movielens import poster_modality
    from fusionrec.features import EfficientNetEncoder, encode_modality
    from fusionrec.models import SideInfo

    ids = train.item_ids
    mod = poster_modality(data_dir / "ml-posters" / "MovieImages", np.asarray(ids.ids))
    enc, report = encode_modality(mod, EfficientNetEncoder(batch_size=32), cache=True)
    x, present = enc.align(ids)
    print(f"posters: {report.summary()} -> {x.shape}, {int(np.asarray(present).sum())} items with a poster", flush=True)
    return SideInfo(
        item_features={"poster": np.asarray(x, np.float32)},
        item_present={"poster": np.asarray(present, bool)},
        item_kinds={"poster": "image"},
    )


def table(results: dict[str, Any]) -> str:
    lines = [
        "| dataset | model | lib | chosen on valid | valid NDCG@10 | test NDCG@10 | test HR@10 | fit wall s | fit CPU s |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for ds_name, rows in results["datasets"].items():
        for label, r in rows.items():
            p = ", ".join(f"{k}={v}" for k, v in r["params"].items()) or "-"
            cpu = "-" if r.get("fit_cpu_s") is None else f"{r['fit_cpu_s']:.1f}"
            lines.append(
                f"| {ds_name} | {label} | {r['lib']} | {p} | {r['valid']['NDCG@10']:.4f} | {r['test']['NDCG@10']:.4f} "
                f"| {r['test']['HR@10']:.4f} | {r['fit_s']:.1f} | {cpu} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--recbole-worker":
        recbole_worker(sys.argv[2])
    else:
        main()
