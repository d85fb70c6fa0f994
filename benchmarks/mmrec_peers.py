"""MMRec's multimodal models (FREEDOM, BM3, LGMRec, LATTICE) and cornac's VBPR on TikTok, ranked by fusionrec's evaluator.

The peers of ``benchmarks/tiktok.py`` on the same published split (``tiktok.diffmm``) and the same features (the
128-d image features in MMRec's vision slot, the 128-d audio features in its text slot; VBPR gets both,
concatenated):

* MMRec (github.com/enoche/MMRec, fetched into ``.bench/MMRec`` and run in its own environment
  ``.bench/mmrec-venv``, both made by ``scripts/bench_setup.sh``) trains each setting of the model's documented
  grid (its ``configs/model/<MODEL>.yaml``) with its own trainer and its own validation early stopping (the
  ``stopping_step`` of its ``overall.yaml``), with NDCG@20 on valid as the validation metric (the one fusionrec's
  models are chosen by) and one epoch budget for every model.  The worker keeps the full score matrix of the best
  valid epoch of each setting; the setting with the best valid NDCG@20 is kept.  MMRec's own test evaluation is
  never run (its ``quick_start`` would pick the setting by TEST Recall@20).
* cornac VBPR (the ``peers`` extra): the setting of cornac's own VBPR example (examples/vbpr_tradesy.py: k 10,
  k2 20, batch 100, lambda_w 1, lambda_b .01, Adam), image + audio concatenated and min-max normalised as its
  ``ImageModality(normalized=True)``; lr (its .005 bracketed) and epochs (10 / 25 / 50, training resumed between
  checkpoints) chosen on valid.  Items without training interactions are scored by VBPR's content part.

Every peer's scores are then ranked by ``fusionrec.evaluation.evaluate_ranking`` exactly as ``tiktok.py`` ranks
fusionrec's models (train masked; ours: validation items masked too; the 340 cold test items ranked alone), and
the per-user NDCG@20 is compared with GraphEASE and EASE refitted at their settings chosen on valid (read from
``results/tiktok_graphease.json``), paired t-test and Wilcoxon.

Run: python benchmarks/mmrec_peers.py [--models FREEDOM,LGMRec,BM3,LATTICE,VBPR] [--epochs 100] [--budget-s S]
     [--reuse] [--resume MODELS] [--quick]
     (writes benchmarks/results/tiktok_peers.json and tiktok_peers.md, whose rows tiktok.py shows beside its own;
     the MMRec data, logs and score matrices go to .bench/mmrec-data, never committed; ``--reuse`` ranks the scores
     an earlier (possibly interrupted) run left there instead of training again)
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

# _common imports only the standard library at module level, so the MMRec worker (its own venv) can load this file
from _common import RESULTS_DIR, Record, library_version, machine, paired, parse_args

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MMREC = ROOT / ".bench" / "MMRec"
WORK = ROOT / ".bench" / "mmrec-data"
#: MMRec's documented grids (configs/model/<MODEL>.yaml of enoche/MMRec e775373); LGMRec's file lists one setting
MMREC_GRIDS: dict[str, dict[str, list[Any]]] = {
    "FREEDOM": {"dropout": [0.8, 0.9], "reg_weight": [0.0, 1e-05, 1e-04, 1e-03]},
    "BM3": {"n_layers": [1, 2], "reg_weight": [0.1, 0.01], "dropout": [0.3, 0.5]},
    "LGMRec": {"n_ui_layers": [2], "n_mm_layers": [2], "n_hyper_layer": [1], "hyper_num": [4], "keep_rate": [0.5],
               "alpha": [0.3], "cl_weight": [1e-04], "reg_weight": [1e-06]},
    "LATTICE": {"reg_weight": [0.0, 1e-05, 1e-04, 1e-03], "learning_rate": [0.0001, 0.0005, 0.001, 0.005]},
}  # fmt: skip


# ---------------------------------------------------------------------------------------------- MMRec worker
def mmrec_worker(job_path: str) -> None:
    """Run inside .bench/mmrec-venv: train every setting of one MMRec model, keep the best valid epoch's scores."""
    import logging
    import signal
    import types

    import numpy as np
    import scipy.sparse as sp
    import torch

    job = json.loads(Path(job_path).read_text())
    torch.set_num_threads(int(job["threads"]))
    # MMRec runs on current numpy / scipy with two shims (np.float went in numpy 1.24; dok_matrix._update in
    # scipy 1.12); its image-pipeline helpers (torchvision, lmdb) are only for raw images, which are not used here
    np.float = float  # type: ignore[attr-defined]
    sp.dok_matrix._update = lambda self, d: [self.__setitem__(k, v) for k, v in d.items()]  # type: ignore
    stub = types.ModuleType("utils.data_utils")
    for name in ("ImageResize", "ImagePad", "image_to_tensor", "load_decompress_img_from_lmdb_value"):
        setattr(stub, name, None)
    sys.modules["utils.data_utils"] = stub
    sys.modules["lmdb"] = types.ModuleType("lmdb")
    if not torch.cuda.is_available():  # LATTICE moves its modality graphs with a hard-coded .cuda(): stay on the CPU
        torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    src = MMREC / "src"
    sys.path.insert(0, str(src))
    os.chdir(src)
    from common.trainer import Trainer  # type: ignore[import-not-found]
    from utils.configurator import Config  # type: ignore[import-not-found]
    from utils.dataloader import EvalDataLoader, TrainDataLoader  # type: ignore[import-not-found]
    from utils.dataset import RecDataset  # type: ignore[import-not-found]
    from utils.utils import get_model, init_seed  # type: ignore[import-not-found]

    logging.basicConfig(level=logging.WARNING)
    name, out = job["model"], Path(job["out"])
    config = Config(name, "tiktok", {
        "use_gpu": False, "data_path": str(WORK) + "/", "epochs": job["epochs"], "stopping_step": job["stopping_step"],
        "valid_metric": "NDCG@20", "seed": job["seed"], "topk": [20], "metrics": ["NDCG"],
    })  # fmt: skip
    dataset = RecDataset(config)
    train, valid, _ = dataset.split()
    for part in (dataset, train, valid):
        str(part)  # as quick_start logs them: __str__ sets the inter_num the loaders read
    train_data = TrainDataLoader(config, train, batch_size=config["train_batch_size"], shuffle=True)
    valid_data = EvalDataLoader(config, valid, additional_dataset=train, batch_size=config["eval_batch_size"])
    capture = object()

    class Capturing(Trainer):  # type: ignore[misc]
        """MMRec's trainer; where it would evaluate on test, it keeps all users' scores of a new best valid epoch."""

        epoch = -1
        best_epoch = -1
        scores: Any = None

        def _valid_epoch(self, data: Any) -> Any:
            if data is not capture:
                self.epoch += 1
                score, result = super()._valid_epoch(data)
                print(f"  epoch {self.epoch} valid NDCG@20 {score:.4f}", file=sys.stderr, flush=True)
                return score, result
            if self.cur_step == 0:  # early_stopping has just recorded a new best valid score
                self.model.eval()
                with torch.no_grad():
                    users = torch.arange(self.model.n_users)
                    self.scores = self.model.full_sort_predict((users,)).cpu().numpy().astype(np.float32)
                self.best_epoch = self.epoch
            return 0.0, {}

    class DeadlineError(Exception):
        """Raised by SIGTERM between two statements of the training loop."""

    def on_term(signum: int, frame: Any) -> None:
        raise DeadlineError

    signal.signal(signal.SIGTERM, on_term)
    keys = list(job["grid"])
    log_path = out / f"{name}_log.json"
    # resume: the settings an earlier (stopped) run finished are kept, with their best scores, and not run again
    log = json.loads(log_path.read_text()) if job.get("resume") and log_path.is_file() else []
    done = [e["setting"] for e in log if not e.get("stopped_by_deadline")]
    log = [e for e in log if not e.get("stopped_by_deadline")]
    best = max((e["valid NDCG@20 (MMRec)"] for e in log), default=-1.0)
    for values in itertools.product(*(job["grid"][k] for k in keys)):
        setting = dict(zip(keys, values))
        if setting in done:
            continue
        for k, v in setting.items():
            config[k] = v
        init_seed(job["seed"])
        train_data.pretrain_setup()
        model = get_model(name)(config, train_data).to(config["device"])
        trainer = Capturing(config, model)
        t0 = time.perf_counter()
        stopped = False
        try:
            trainer.fit(train_data, valid_data=valid_data, test_data=capture, saved=False, verbose=False)
        except DeadlineError:  # SIGTERM (a wall-clock budget): keep the best valid epoch so far, run no further setting
            stopped = True
        valid_score = float(trainer.best_valid_score)
        entry = {"setting": setting, "valid NDCG@20 (MMRec)": valid_score, "best_epoch": trainer.best_epoch,
                 "epochs_run": trainer.epoch + 1, "seconds": time.perf_counter() - t0,
                 "stopped_by_deadline": stopped}  # fmt: skip
        log.append(entry)
        print(json.dumps(entry), flush=True)
        if valid_score > best and trainer.scores is not None:
            best = valid_score
            np.save(out / f"{name}_scores.npy", trainer.scores)
        log_path.write_text(json.dumps(log, indent=1))
        if stopped:
            break


def prepare_mmrec_data(split: Any, side: Any) -> None:
    """Write the split and features in MMRec's layout: <WORK>/tiktok/tiktok.inter (+ features, dataset yaml)."""
    import numpy as np

    d = WORK / "tiktok"
    d.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, part in enumerate((split.train, split.valid, split.test)):
        coo = part.matrix.tocoo()
        rows += [f"{u}\t{i}\t{label}" for u, i in zip(coo.row, coo.col)]
    (d / "tiktok.inter").write_text("userID\titemID\tx_label\n" + "\n".join(rows) + "\n")
    np.save(d / "image_feat.npy", np.asarray(side.item_features["image"], dtype=np.float32))
    np.save(d / "text_feat.npy", np.asarray(side.item_features["audio"], dtype=np.float32))
    (MMREC / "src" / "configs" / "dataset" / "tiktok.yaml").write_text(
        "USER_ID_FIELD: userID\nITEM_ID_FIELD: itemID\nTIME_FIELD: timestamp\nfilter_out_cod_start_users: True\n"
        "inter_file_name: 'tiktok.inter'\nvision_feature_file: 'image_feat.npy'\ntext_feature_file: 'text_feat.npy'\n"
        "user_graph_dict_file: 'user_graph_dict.npy'\nfield_separator: \"\\t\"\n"
    )


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--mmrec-worker":
    mmrec_worker(sys.argv[2])
    sys.exit(0)


# ---------------------------------------------------------------------------------------------- orchestration
def counts(entry: dict[str, Any], stopping_step: int) -> bool:
    """Whether a setting's log entry is a result: it stopped on its own (early stopping or the epoch cap), or the
    wall-clock deadline stopped it after at least ``stopping_step`` epochs (a timing run of a few epochs is not)."""
    return not entry.get("stopped_by_deadline") or entry["epochs_run"] >= stopping_step


def run_mmrec(name: str, args: Any) -> dict[str, Any]:
    """Train one MMRec model's grid in .bench/mmrec-venv (a subprocess, niced); return its log (best setting first)."""
    out = WORK / "runs" / name
    out.mkdir(parents=True, exist_ok=True)
    scores, log_path = out / f"{name}_scores.npy", out / f"{name}_log.json"
    resume = name in args.resume.split(",")
    if resume or not (args.reuse and scores.exists() and log_path.exists()):
        job = {"model": name, "out": str(out), "epochs": args.epochs, "stopping_step": args.stopping_step,
               "seed": 999, "threads": args.threads, "grid": MMREC_GRIDS[name], "resume": resume}  # fmt: skip
        if args.quick:  # the first setting only
            job["grid"] = {k: v[:1] for k, v in MMREC_GRIDS[name].items()}
        (out / "job.json").write_text(json.dumps(job))
        cmd = [
            "nice",
            "-n",
            "5",
            args.mmrec_python,
            str(Path(__file__).resolve()),
            "--mmrec-worker",
            str(out / "job.json"),
        ]
        print(
            f"{name}: MMRec grid {job['grid']} (<= {args.epochs} epochs, stopping_step {args.stopping_step})",
            flush=True,
        )
        with open(out / "stdout.log", "w") as sink:
            worker = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
            try:
                worker.wait(timeout=args.budget_s or None)
            except subprocess.TimeoutExpired:  # SIGTERM: the worker keeps the best valid epoch so far and stops
                worker.terminate()
                worker.wait()
        if worker.returncode:
            raise subprocess.CalledProcessError(worker.returncode, cmd)
    log = json.loads(log_path.read_text())
    return {"log": sorted(log, key=lambda e: -e["valid NDCG@20 (MMRec)"]), "scores": scores}


#: cornac VBPR: its documented Tradesy example's lr (0.005) bracketed, and epochs (50) checked on valid on the way
VBPR_LRS = (0.005, 0.001, 0.02)
VBPR_EPOCHS = [10, 25, 50]


def vbpr_scores(split: Any, features: Any, lr: float, epochs: list[int], seed: int) -> Iterator[tuple[int, Any]]:
    """cornac VBPR (its documented Tradesy setting but lr) trained in chunks; yields (epochs, all users x all items scores) after each.

    Items with no training interaction are scored by VBPR's content part alone (theta_u . E f_i + beta' f_i), as
    the VBPR paper scores cold items; cornac itself only scores the items of its training set.
    """
    import cornac
    import numpy as np
    from cornac.data import ImageModality

    coo = split.train.matrix.tocoo()
    triples = [(str(u), str(i), 1.0) for u, i in zip(coo.row, coo.col)]
    train_set = cornac.data.Dataset.from_uir(triples, seed=seed)
    item_index = np.array([train_set.iid_map.get(str(i), -1) for i in range(split.train.n_items)])
    user_index = np.array([train_set.uid_map.get(str(u), -1) for u in range(split.train.n_users)])
    cold = item_index < 0
    # min-max normalised over the whole matrix, as cornac's ImageModality(normalized=True); rows in cornac's order
    full_feats = np.asarray(features, dtype=np.float32) - float(np.min(features))
    full_feats /= float(full_feats.max()) + 1e-10
    ordered = np.zeros((train_set.num_items, full_feats.shape[1]), dtype=np.float32)
    ordered[item_index[~cold]] = full_feats[~cold]
    train_set.add_modalities(item_image=ImageModality(features=ordered))
    model = cornac.models.VBPR(k=10, k2=20, batch_size=100, learning_rate=lr, lambda_w=1, lambda_b=0.01,
                               lambda_e=0.0, use_gpu=False, verbose=False, seed=seed)  # fmt: skip
    done = 0
    for e in epochs:
        model.n_epochs = e - done
        model.fit(train_set)
        done = e
        gamma_i = np.zeros((split.train.n_items, model.k), dtype=np.float32)
        beta_i = np.zeros(split.train.n_items, dtype=np.float32)
        gamma_i[~cold], beta_i[~cold] = model.gamma_item[item_index[~cold]], model.beta_item[item_index[~cold]]
        known = user_index >= 0
        gu = np.zeros((split.train.n_users, model.k), dtype=np.float32)
        tu = np.zeros((split.train.n_users, model.k2), dtype=np.float32)
        gu[known], tu[known] = model.gamma_user[user_index[known]], model.theta_user[user_index[known]]
        item_side = np.hstack([gamma_i, full_feats @ model.emb_matrix]).astype(np.float32)
        bias = beta_i + (full_feats @ model.beta_prime).ravel()
        yield e, np.hstack([gu, tu]) @ item_side.T + bias[None, :]


def run_vbpr(split: Any, side: Any, args: Any, fixed: Any, valid_ndcg: Any) -> dict[str, Any]:
    """cornac VBPR over lr x epochs on valid; keeps the best scores in .bench/mmrec-data/runs/VBPR (like run_mmrec)."""
    import numpy as np

    out = WORK / "runs" / "VBPR"
    out.mkdir(parents=True, exist_ok=True)
    scores_path, log_path = out / "VBPR_scores.npy", out / "VBPR_log.json"
    if not (args.reuse and scores_path.exists() and log_path.exists()):
        feats = np.hstack([side.item_features["image"], side.item_features["audio"]]).astype(np.float32)
        log: list[dict[str, Any]] = []
        best = -1.0
        for lr in VBPR_LRS[:1] if args.quick else VBPR_LRS:
            t0 = time.perf_counter()
            for e, scores in vbpr_scores(split, feats, lr, [2] if args.quick else VBPR_EPOCHS, 0):
                v = valid_ndcg(fixed(scores))
                log.append({"setting": {"learning_rate": lr, "n_epochs": e}, "valid NDCG@20": v,
                            "seconds": time.perf_counter() - t0})  # fmt: skip
                t0 = time.perf_counter()
                print(f"  VBPR lr {lr} epochs {e}: valid NDCG@20 {v:.4f}", flush=True)
                if v > best:
                    best = v
                    np.save(scores_path, scores.astype(np.float32))
                log_path.write_text(json.dumps(log, indent=1))
    log = json.loads(log_path.read_text())
    return {"log": sorted(log, key=lambda e: -e["valid NDCG@20"]), "scores": scores_path}


def main() -> None:
    import numpy as np
    from fairness_curve import CachedScores
    from tiktok import SIDE, SPLIT, K, evaluate

    from fusionrec.data.datasets import load_benchmark_split, load_dataset
    from fusionrec.features import build_side_info
    from fusionrec.models import make_model

    def extra(p: Any) -> None:
        p.add_argument("--models", default="FREEDOM,LGMRec,BM3,LATTICE,VBPR", help="MMRec models and/or VBPR")
        p.add_argument("--epochs", type=int, default=100, help="epoch budget of every MMRec setting")
        p.add_argument("--stopping-step", type=int, default=20, help="MMRec's early stopping patience (epochs)")
        p.add_argument("--threads", type=int, default=1, help="torch threads of the peers")
        p.add_argument("--mmrec-python", default=str(ROOT / ".bench" / "mmrec-venv" / "bin" / "python"))
        p.add_argument("--reuse", action="store_true", help="rank the MMRec scores left by an earlier run")
        p.add_argument("--resume", default="", help="MMRec models (comma separated) whose grid an earlier run left "
                       "unfinished: train the settings it did not finish, keep those it did")  # fmt: skip
        p.add_argument("--budget-s", type=float, default=0.0, help="wall-clock seconds per MMRec model's grid run "
                       "(0: none); at the budget the running setting stops, keeping its best valid epoch")  # fmt: skip
        p.add_argument("--results", default="tiktok_peers", help="results name under benchmarks/results/")

    args = parse_args("TikTok peers: MMRec and cornac VBPR ranked by fusionrec's evaluator", extra)
    import torch

    torch.set_num_threads(args.threads)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    ds = load_dataset("tiktok", args.data_dir)
    split = load_benchmark_split(SPLIT, args.data_dir)
    side, _ = build_side_info(ds, cache=False)
    test_items = np.unique(split.test.matrix.indices)
    cold = test_items[split.train.item_counts()[test_items] == 0]
    prepare_mmrec_data(split, side)

    def fixed(scores: Any) -> Any:
        return CachedScores(np.asarray(scores, dtype=np.float32)).fit(split.train)

    def metrics(model: Any) -> dict[str, Any]:
        ours = evaluate(model, split, split.test, exclude=[split.valid])
        pub = evaluate(model, split, split.test)
        cold_res = evaluate(model, split, split.test, candidates=cold)
        return {
            "valid NDCG@20": float(evaluate(model, split, split.valid).metrics[f"NDCG@{K}"]),
            **{f"{m}@20": float(ours.metrics[f"{m}@{K}"]) for m in ("NDCG", "Recall", "Precision")},
            **{f"published {m}@20": float(pub.metrics[f"{m}@{K}"]) for m in ("NDCG", "Recall", "Precision")},
            **{f"cold {m}@20": float(cold_res.metrics[f"{m}@{K}"]) for m in ("NDCG", "Recall", "Precision")},
            "per_user": pub.per_user[f"NDCG@{K}"],
        }

    rows: list[dict[str, Any]] = []
    missing: dict[str, str] = {}
    # fusionrec's references, refitted at the settings tiktok.py chose on valid (deterministic models)
    chosen = json.loads((RESULTS_DIR / "tiktok_graphease.json").read_text())["records"]
    for rec in chosen:
        t0 = time.perf_counter()
        model = make_model(rec["model"], **rec["params"])
        model.fit(split.train, side) if rec["model"] in SIDE else model.fit(split.train)
        rows.append({"library": "fusionrec", "model": rec["model"], "params": rec["params"],
                     "seconds": time.perf_counter() - t0, "notes": "", **metrics(model)})  # fmt: skip
        print(f"fusionrec {rec['model']}: test NDCG@20 {rows[-1]['NDCG@20']:.4f}", flush=True)

    for name in names:
        t0 = time.perf_counter()
        if name == "VBPR":
            run = run_vbpr(
                split, side, args, fixed, lambda m: float(evaluate(m, split, split.valid).metrics[f"NDCG@{K}"])
            )
            top = run["log"][0]
            notes = f"{len(run['log'])} of the {len(VBPR_LRS) * len(VBPR_EPOCHS)} lr x epochs points run; " + "; ".join(
                f"{json.dumps(e['setting'])}: valid {e['valid NDCG@20']:.4f}" for e in run["log"]
            )
            rows.append({"library": "cornac", "model": "VBPR", "params": top["setting"],
                         "seconds": sum(e["seconds"] for e in run["log"]), "notes": notes,
                         **metrics(fixed(np.load(run["scores"])))})  # fmt: skip
        else:
            if (
                args.reuse
                and name not in args.resume.split(",")
                and not (WORK / "runs" / name / f"{name}_log.json").is_file()
            ):
                missing[name] = "no setting finished (see its log under .bench/mmrec-data/runs)"
                continue
            run = run_mmrec(name, args)
            if not any(counts(e, args.stopping_step) for e in run["log"]):
                missing[name] = "no setting ran long enough for its early stopping to act: " + "; ".join(
                    f"{json.dumps(e['setting'])} ran {e['epochs_run']} epochs in {e['seconds']:.0f} s of the shared "
                    f"cores (valid {e['valid NDCG@20 (MMRec)']:.4f} at epoch {e['best_epoch']}) before the wall-clock "
                    "deadline stopped it"
                    for e in run["log"]
                )
                write(args, rows, missing)
                continue
            top = run["log"][0]
            size = len(list(itertools.product(*MMREC_GRIDS[name].values())))
            notes = f"{len(run['log'])} of the {size} settings of its grid run; " + "; ".join(
                f"{json.dumps(e['setting'])}: valid {e['valid NDCG@20 (MMRec)']:.4f} (best epoch {e['best_epoch']} "
                f"of {e['epochs_run']}{', stopped by the wall-clock deadline' if e.get('stopped_by_deadline') else ''})"
                for e in run["log"]
            )
            rows.append({"library": "MMRec", "model": name, "params": top["setting"],
                         "seconds": sum(e["seconds"] for e in run["log"]), "notes": notes,
                         "best_epoch": top["best_epoch"], "epochs_run": top["epochs_run"],
                         "settings_run": len(run["log"]), **metrics(fixed(np.load(run["scores"])))})  # fmt: skip
        print(f"{rows[-1]['library']} {name}: valid {rows[-1]['valid NDCG@20']:.4f} test NDCG@20 "
              f"{rows[-1]['NDCG@20']:.4f} Recall@20 {rows[-1]['Recall@20']:.4f}", flush=True)  # fmt: skip
        write(args, rows, missing)


def write(args: Any, rows: list[dict[str, Any]], missing: dict[str, str]) -> None:
    """results/<name>.json (one record per row, the benchmarks' format) and its table, results/<name>.md."""
    cmd = "python benchmarks/mmrec_peers.py" + (" --quick" if args.quick else "")
    cmd += f" --models {args.models} --epochs {args.epochs} --stopping-step {args.stopping_step}"
    cmd += f" --budget-s {args.budget_s:g}" if args.budget_s else ""
    cmd += (" --reuse" if args.reuse else "") + (f" --resume {args.resume}" if args.resume else "")
    ref = {r["model"]: r for r in rows if r["library"] == "fusionrec"}
    records = []
    versions = {"fusionrec": library_version("fusionrec"), "cornac": library_version("cornac"),
                "MMRec": "enoche/MMRec e775373"}  # fmt: skip
    for r in rows:
        metrics = {k: v for k, v in r.items() if k.endswith("@20")}
        for base in ("GraphEASE", "EASE"):
            if base in ref and r["model"] != base:
                test = paired(r["per_user"], ref[base]["per_user"])
                metrics[f"NDCG@20 vs {base} (diff)"] = test["diff"]
                metrics[f"NDCG@20 vs {base} (t p)"] = test["t_p"]
                metrics[f"NDCG@20 vs {base} (Wilcoxon p)"] = test["wilcoxon_p"]
        records.append(Record(library=r["library"], library_version=versions[r["library"]], model=r["model"],
                              dataset="tiktok", split="tiktok.diffmm", params=r["params"], metrics=metrics,
                              fit_seconds=r["seconds"], notes=r["notes"]).__dict__)  # fmt: skip
    payload = {"benchmark": args.results, "run_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "machine": machine(), "command": cmd, "epochs": args.epochs, "stopping_step": args.stopping_step,
               "missing": missing, "records": records}  # fmt: skip
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{args.results}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    render(args.results)


def render(name: str) -> None:
    """results/<name>.md from results/<name>.json alone (``--render`` redraws it without running anything)."""
    from tiktok import PUBLISHED

    payload = json.loads((RESULTS_DIR / f"{name}.json").read_text())
    recs, mach = payload["records"], payload["machine"]
    ge = next((r["metrics"]["published NDCG@20"] for r in recs if r["model"] == "GraphEASE"), None)

    def tests(m: dict[str, Any], base: str) -> str:
        return f"(p {m[f'NDCG@20 vs {base} (t p)']:.1g} / {m[f'NDCG@20 vs {base} (Wilcoxon p)']:.1g})"

    def over(m: dict[str, Any]) -> str:  # GraphEASE's gain over this row, the direction of the target
        d = m.get("NDCG@20 vs GraphEASE (diff)")
        return "" if d is None or not ge else f"{100 * -d / m['published NDCG@20']:+.1f}% {tests(m, 'GraphEASE')}"

    def vs_ease(m: dict[str, Any]) -> str:
        d = m.get("NDCG@20 vs EASE (diff)")
        ease = next((r["metrics"]["published NDCG@20"] for r in recs if r["model"] == "EASE"), None)
        return "" if d is None or not ease else f"{100 * d / ease:+.1f}% {tests(m, 'EASE')}"

    lines = [
        "# TikTok (DiffMM split): MMRec and cornac peers ranked by fusionrec's evaluator",
        "",
        f"`{payload['command']}` — run {payload['run_at']} on {mach['cpu']}, {mach['cores']} cores shared with "
        "other jobs. Every row is ranked by the same code (`fusionrec.evaluation.evaluate_ranking`, all 6,710 "
        "items, train masked; ours also masks validation items, which on this split changes nothing, so one set of "
        "columns). MMRec models: each setting of the model's own grid (configs/model/*.yaml) trained by MMRec's "
        f"trainer for at most {payload['epochs']} epochs with its early stopping (patience "
        f"{payload['stopping_step']} epochs) on valid NDCG@20 (MMRec's own default: 1000 epochs, patience 20; the cap "
        "is what the shared cores allow), the scores of its best valid epoch kept; a setting still training at the "
        "wall-clock budget of its run was stopped there, keeping its best valid epoch so far; the setting "
        "with the best valid NDCG@20 kept (MMRec's own quick_start would pick it by test Recall@20). Image "
        "features in MMRec's vision slot, audio in its text slot. VBPR: the setting of cornac's VBPR example "
        "(k 10, k2 20, batch 100, lambda_w 1), image+audio concatenated, lr and epochs chosen on valid. fusionrec "
        "rows: refitted at the settings `tiktok.py` chose on valid (results/tiktok_graphease.json). Paired tests "
        "over the 6,130 test users (t-test / Wilcoxon on NDCG@20).",
        "",
        "| model | chosen on valid | valid NDCG@20 | Recall@20 | NDCG@20 | Precision@20 | cold-item NDCG@20 | "
        "GraphEASE's NDCG@20 over this row | NDCG@20 vs tuned EASE |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in recs:
        m = r["metrics"]
        lines.append(
            f"| {r['library']} {r['model']} | `{json.dumps(r['params'])}` | {m['valid NDCG@20']:.4f} | "
            f"{m['published Recall@20']:.4f} | {m['published NDCG@20']:.4f} | {m['published Precision@20']:.4f} | "
            f"{m['cold NDCG@20']:.4f} | {over(m)} | {vs_ease(m)} |"
        )
    for model, (rec, ndcg, prec) in PUBLISHED.items():
        if model in {"VBPR", "LATTICE", "BM3", "LightGCN", "DiffMM"}:
            lines.append(f"| {model} (published, chosen on test) | | | {rec:.4f} | {ndcg:.4f} | {prec:.4f} | | | |")
    lines += ["", "Settings tried (valid NDCG@20 as MMRec's evaluator reports it, 4 decimals):", ""]
    lines += [f"- {r['library']} {r['model']}: {r['notes']}" for r in recs if r["notes"]]
    lines += [f"- MMRec {m}: not in the table: {why}" for m, why in payload.get("missing", {}).items()]
    (RESULTS_DIR / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--render":
    render(sys.argv[2])
    sys.exit(0)

if __name__ == "__main__":
    main()
