"""The benchmark convention shared by every ``benchmarks/<name>.py``.

A benchmark runs fusionrec and its peers in one process on the same split, then calls
:func:`write_results`, which

* appends one JSON record per (library, model, dataset, split) run to ``benchmarks/results/<name>.json``
  (library and version, model, hyper-parameters, dataset, split, every metric, fit / predict seconds,
  peak memory, machine), replacing the records of the previous run of the same benchmark, and
* rewrites that benchmark's section of ``benchmarks/RESULTS.md`` as a table.

The data directory comes from ``--data-dir`` or ``FUSIONREC_DATA_DIR``; ``--seed`` (one or several, comma
separated) picks the split seeds: 2026 is the committed ``splits/<name>.csv``, any other seed regenerates the split
by the rule of ``../shared/data/README.md`` (:func:`benchmark_split`).

``--smoke`` (every benchmark; tests/test_benchmarks_smoke.py runs them, marker ``benchsmoke``) is a run of seconds:
the script's ``--quick`` settings with tiny grids, on a tiny slice of the real data (:func:`shrink`: the
:data:`SMOKE_ITEMS` most interacted items and :data:`SMOKE_USERS` random users with interactions on them) or, when
the data directory is absent, on the built-in synthetic dataset (:func:`smoke_dataset`); peers whose package is
missing are skipped (:func:`have_peer`), and results go only under ``$FUSIONREC_BENCH_OUT``, never over the
committed ones.

Fairness helpers shared by the benchmarks: :func:`tune` (grid search on valid whose grid extends itself when
the chosen value sits at an edge), :func:`paired` (paired t-test and Wilcoxon over the per-user metric
vectors of the same users), :func:`user_buckets` / :func:`item_bucket_recall` (results by user activity and
item popularity) and :func:`mean_spread` (mean and spread over seeds).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import resource
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: the seed of the committed split files (../shared/data/splits/*.csv)
SPLIT_SEED = 2026

HERE = Path(__file__).resolve().parent
#: where results go: this folder, or $FUSIONREC_BENCH_OUT (the smoke runs of tests/test_benchmarks_smoke.py)
OUT = Path(os.environ.get("FUSIONREC_BENCH_OUT") or HERE)
RESULTS_DIR = OUT / "results"
RESULTS_MD = OUT / "RESULTS.md"


def parse_args(
    description: str,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
    fixed_splits: str | None = None,
) -> argparse.Namespace:
    """The shared options; ``fixed_splits`` (why) marks a benchmark whose splits no seed can redraw."""
    # "resolve": a script that still declares its own --smoke (serving_load) keeps it
    parser = argparse.ArgumentParser(description=description, conflict_handler="resolve")
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("FUSIONREC_DATA_DIR", str(HERE.parent.parent / "shared" / "data")),
        help="directory holding the shared datasets (default: $FUSIONREC_DATA_DIR or ../shared/data)",
    )
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    add_smoke(parser)
    parser.add_argument(
        "--seed",
        default=str(SPLIT_SEED),
        help=f"split seed(s), comma separated: {SPLIT_SEED} = the committed split files, others regenerate the "
        "splits by the rule of ../shared/data/README.md (default %(default)s)",
    )
    if extra:
        extra(parser)
    args = parser.parse_args()
    check_smoke(parser, args)
    try:
        args.seeds = [int(x) for x in str(args.seed).split(",") if x.strip()]
    except ValueError:
        parser.error(f"--seed takes integers separated by commas, got {args.seed!r}")
    if not args.seeds:
        parser.error("--seed needs at least one integer")
    if fixed_splits and args.seeds != [SPLIT_SEED]:
        parser.error(f"this benchmark {fixed_splits}: --seed does not apply")
    args.data_dir = Path(args.data_dir)
    if not args.data_dir.is_dir():
        if not args.smoke:
            parser.error(f"data directory {args.data_dir} does not exist; pass --data-dir")
        print(f"smoke: no data directory {args.data_dir}, using the built-in synthetic dataset", flush=True)
        args.data_dir = None
    return args


# ---------------------------------------------------------------------------------------------------- smoke runs
#: sizes of a ``--smoke`` run: users and items kept from the real data (:func:`shrink`) or generated
SMOKE_USERS = 120
SMOKE_ITEMS = 250


def add_smoke(parser: argparse.ArgumentParser) -> None:
    """The ``--smoke`` option (for scripts with their own parser; :func:`parse_args` adds it); check with
    :func:`check_smoke` after parsing."""
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="seconds in all: tiny data and grids, peers skipped when absent, results only under "
        "$FUSIONREC_BENCH_OUT (tests/test_benchmarks_smoke.py)",
    )


def check_smoke(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A smoke run implies ``--quick`` and writes only under ``$FUSIONREC_BENCH_OUT``."""
    global SMOKE
    if not args.smoke:
        return
    if OUT == HERE:
        parser.error("--smoke writes only under $FUSIONREC_BENCH_OUT: set it to a scratch folder")
    args.quick, SMOKE = True, True


#: set by :func:`check_smoke` in a smoke run
SMOKE = False


def release_memory() -> None:
    """Collect garbage and hand freed heap back to the OS, so the next :class:`PeakRSS` base is honest (skipped in
    a smoke run: a full collection of a heap holding torch and transformers takes about a second, and a smoke
    run's memory figures mean nothing)."""
    import ctypes
    import gc

    if SMOKE:
        return
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def have_peer(module: str, smoke: bool, install: str = "scripts/bench_setup.sh") -> bool:
    """Whether the peer ``module`` imports; a missing peer is skipped in a smoke run and stops a full one."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        if smoke:
            print(f"smoke: peer {module} not installed, its rows are skipped", flush=True)
            return False
        raise SystemExit(f"the peer {module} is not installed; run {install}") from None
    return True


def shrink(
    split: Any, n_users: int = SMOKE_USERS, n_items: int = SMOKE_ITEMS, seed: int = 0, held: tuple[str, ...] = ("test",)
) -> Any:
    """A tiny copy of ``split``: the ``n_items`` items with the most interactions over all parts and ``n_users``
    users drawn at random (``seed``) among those with training and test interactions on them, so light and heavy
    users both stay; raw ids and content keys are unchanged (cold items stay cold).  ``held=("test", "valid")``
    draws among users with training and test *or* validation interactions (a split where no user has both, as
    TikTok's, would otherwise keep no validation part)."""
    import numpy as np

    from fusionrec.data import IdMap, Interactions, Split

    parts = {k: p for k, p in (("train", split.train), ("valid", split.valid), ("test", split.test)) if p is not None}
    items = np.sort(np.argsort(-sum(p.item_counts() for p in parts.values()), kind="stable")[:n_items])
    keep_item = np.zeros(split.train.n_items, bool)
    keep_item[items] = True

    def kept(p: Any) -> np.ndarray:
        return np.bincount(p.row_indices()[keep_item[p.matrix.indices]], minlength=p.n_users)

    eligible = np.flatnonzero((kept(split.train) > 0) & (sum(kept(parts[h]) for h in held if h in parts) > 0))
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(eligible, min(n_users, len(eligible)), replace=False))
    keep_user = np.zeros(split.train.n_users, bool)
    keep_user[users] = True
    umap, imap = IdMap(split.train.user_ids.to_id(users)), IdMap(split.train.item_ids.to_id(items))

    def cut(p: Any) -> Any:
        rows, cols = p.row_indices(), p.matrix.indices
        m = keep_user[rows] & keep_item[cols]
        return Interactions.from_arrays(
            p.user_ids.to_id(rows[m]), p.item_ids.to_id(cols[m]), p.matrix.data[m],
            None if p.timestamps is None else p.timestamps[m], user_ids=umap, item_ids=imap, explicit=p.explicit,
        )  # fmt: skip

    small = {k: cut(p) for k, p in parts.items()}
    return Split(small["train"], small["test"], small.get("valid"), name=f"{split.name} (smoke slice)",
                 cold=split.cold, meta={**split.meta, "smoke": True})  # fmt: skip


def shrink_dataset(ds: Any, user_ids: Any, item_ids: Any) -> Any:
    """``ds`` restricted to the raw ids of ``user_ids`` / ``item_ids`` (IdMaps, e.g. a :func:`shrink` split's):
    interactions (without timestamps; the split holds those), every modality and the social graph."""
    import numpy as np

    from fusionrec.data import Dataset, IdMap, Interactions, Modality

    def cut(mods: dict[str, Any], idmap: Any) -> dict[str, Any]:
        out = {}
        for name, mod in mods.items():
            rows, present = mod.rows_for(idmap)
            rows = rows[present]
            data = mod.data.iloc[rows].reset_index(drop=True) if mod.kind == "tabular" else (
                np.asarray(mod.data)[rows] if mod.kind == "features" else [mod.data[r] for r in rows.tolist()]
            )  # fmt: skip
            out[name] = Modality(mod.kind, IdMap(idmap.ids[present]), data, mod.target)
        return out

    inter = ds.interactions
    u = inter.user_ids.to_index(user_ids.ids, missing="ignore")
    i = inter.item_ids.to_index(item_ids.ids, missing="ignore")
    m = inter.matrix.tocsr()[u[u >= 0]][:, i[i >= 0]].tocoo()
    umap, imap = IdMap(inter.user_ids.to_id(u[u >= 0])), IdMap(inter.item_ids.to_id(i[i >= 0]))
    small = Interactions.from_arrays(umap.to_id(m.row), imap.to_id(m.col), m.data, user_ids=umap, item_ids=imap,
                                     explicit=inter.explicit)  # fmt: skip
    social = None if ds.social is None else ds.social.tocsr()[u[u >= 0]][:, u[u >= 0]].tocsr()
    return Dataset(ds.name, small, cut(ds.item_modalities, imap), cut(ds.user_modalities, umap), social,
                   {**ds.meta, "smoke": True})  # fmt: skip


def smoke_dataset(seed: int = 0, **kwargs: Any) -> Any:
    """The built-in synthetic dataset at smoke size (no images or audio unless asked): what a smoke run uses when
    the data directory is absent."""
    from fusionrec.data.datasets.synthetic import make_synthetic

    opts = {"with_images": False, "with_audio": False, **kwargs}
    return make_synthetic(n_users=SMOKE_USERS, n_items=SMOKE_ITEMS, seed=seed, **opts)


def machine() -> dict[str, Any]:
    """Where the numbers were measured."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class PeakRSS:
    """Samples the current RSS in a thread and reports the peak above the starting level (MB).

    ``ru_maxrss`` only grows, so per-model peaks need sampling; this reads /proc/self/statm.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0.0
        self.base = 0.0
        self._stop = threading.Event()

    @staticmethod
    def _current() -> float:
        try:
            pages = int(Path("/proc/self/statm").read_text().split()[1])
            return pages * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024
        except OSError:
            return rss_mb()

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = self._current()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._current())
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._current())

    @property
    def delta_mb(self) -> float:
        return round(self.peak - self.base, 1)


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """``with timed() as t: ...`` then ``t["seconds"]``."""
    out: dict[str, float] = {}
    start = time.perf_counter()
    yield out
    out["seconds"] = time.perf_counter() - start


@dataclass
class Record:
    library: str
    library_version: str
    model: str
    dataset: str
    split: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    fit_seconds: float | None = None
    predict_seconds: float | None = None
    peak_memory_mb: float | None = None
    notes: str = ""


def library_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if abs(v) >= 100:
            return f"{v:.1f}"
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"
    return str(v)


def write_results(
    name: str,
    records: list[Record],
    *,
    metric_columns: list[str],
    title: str,
    command: str,
    notes: str = "",
) -> None:
    """Store the run's records and rewrite this benchmark's section of RESULTS.md."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    mach = machine()
    payload = {
        "benchmark": name,
        "run_at": now,
        "machine": mach,
        "command": command,
        "records": [asdict(r) for r in records],
    }
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")

    header = ["library", "model", "dataset", "split", *metric_columns, "fit s", "predict s", "peak MB"]
    lines = [
        f"## {title}",
        "",
        f"`{command}` — run {now} on {mach['cpu']}, {mach['cores']} cores, {mach['memory_gb']} GB, "
        f"Python {mach['python']}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for r in records:
        row = [
            f"{r.library} {r.library_version}",
            r.model,
            r.dataset,
            r.split,
            *[_fmt(r.metrics.get(c)) for c in metric_columns],
            _fmt(r.fit_seconds),
            _fmt(r.predict_seconds),
            _fmt(r.peak_memory_mb),
        ]
        lines.append("| " + " | ".join(row) + " |")
    if notes:
        lines += ["", notes]
    section = "\n".join(lines) + "\n"

    start_tag, end_tag = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{start_tag}\n{section}{end_tag}"
    with _results_lock():  # benchmarks finishing at once must not drop each other's sections
        text = (
            RESULTS_MD.read_text()
            if RESULTS_MD.exists()
            else "# Benchmark results\n\nEach section is rewritten by its benchmark script.\n"
        )
        if start_tag in text and end_tag in text:
            before, rest = text.split(start_tag, 1)
            _, after = rest.split(end_tag, 1)
            text = before + block + after
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        tmp = RESULTS_MD.with_name(f".{RESULTS_MD.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, RESULTS_MD)  # readers see the old or the new file, never half of one


@contextmanager
def _results_lock() -> Iterator[None]:
    """An exclusive lock on ``RESULTS.md``'s read-modify-write, held across processes (POSIX ``flock``)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: one benchmark at a time is the user's business
        yield
        return
    RESULTS_MD.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS_MD.with_name(".RESULTS.md.lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------------- splits
def benchmark_split(name: str, data_dir: Path | None, seed: int = SPLIT_SEED, smoke: bool = False) -> Any:
    """The benchmark split ``name`` for ``seed``: the committed file for 2026, else regenerated by its rule.

    ``smoke``: its :func:`shrink` slice, or with no ``data_dir`` the same rule applied to :func:`smoke_dataset`.

    ``*.random811``: per user with ``n >= 3`` interactions, ``round(n / 10)`` (at least 1, numpy rounding)
    random ones are valid and as many test, the rest train (users with 1 or 2 keep all in train) -- the
    counts of the committed files, checked against them.  ``*.coldstart-items``: 10% of the items with all
    their interactions valid, 10% test (:func:`~fusionrec.data.splits.cold_items_split`).  Regenerated
    splits reuse the committed split's id maps, so content aligns the same way.
    """
    import scipy.sparse as sp

    from fusionrec.data import Interactions
    from fusionrec.data.datasets import load_benchmark_split
    from fusionrec.data.splits import cold_items_split

    if smoke and data_dir is None:
        full = smoke_dataset().interactions
        if name.endswith("coldstart-items"):
            return cold_items_split(full, test=0.1, valid=0.1, seed=seed)
        return random811(full, seed, f"synthetic (for {name})")
    if smoke:
        return shrink(benchmark_split(name, data_dir, seed))
    base = load_benchmark_split(name, data_dir)
    if seed == SPLIT_SEED:
        return base
    parts = [p for p in (base.train, base.valid, base.test) if p is not None]
    full = Interactions(
        sp.csr_matrix(sum(p.matrix for p in parts)), base.train.user_ids, base.train.item_ids,
        explicit=base.train.explicit,
    )  # fmt: skip
    if name.endswith("coldstart-items"):
        return cold_items_split(full, test=0.1, valid=0.1, seed=seed)
    if name.endswith("random811"):
        return random811(full, seed, name)
    raise SystemExit(f"no regeneration rule for split {name!r}; use --seed {SPLIT_SEED}")


def random811(full: Any, seed: int, name: str) -> Any:
    """The ``*.random811`` rule of ``../shared/data/README.md`` applied to the Interactions ``full``: per user with
    ``n >= 3`` interactions, ``round(n / 10)`` (at least 1) random ones valid and as many test, the rest train."""
    import numpy as np

    from fusionrec.data import Split

    rng = np.random.default_rng(seed)
    rows = full.row_indices()
    order = np.lexsort((rng.random(full.nnz), rows))  # random order within each user
    n = np.diff(full.matrix.indptr)
    held = np.where(n >= 3, np.maximum(1, np.round(n * 0.1)), 0).astype(np.int64)
    rank = np.empty(full.nnz, dtype=np.int64)
    rank[order] = np.arange(full.nnz) - full.matrix.indptr[rows[order]]
    labels = np.zeros(full.nnz, dtype=np.int8)
    labels[rank < 2 * held[rows]] = 1
    labels[rank < held[rows]] = 2
    part = {k: full.select(labels == k) for k in (0, 1, 2)}
    return Split(part[0], part[2], part[1], name=f"{name}@seed{seed}", meta={"seed": seed})


def posters_dataset(data_dir: Path | None, split: Any, smoke: bool = False) -> Any:
    """ml-posters with user tags from ``split``'s training pairs only (a cold item's tags were written by the users
    whose held-out interactions are the test); ``smoke``: restricted to the split's slice, or without ``data_dir``
    the synthetic dataset with its images as ``poster``."""
    from fusionrec.data.datasets import load_ml_posters

    if data_dir is None:
        ds = smoke_dataset(with_images=True)
        ds.item_modalities["poster"] = ds.item_modalities["image"]
        return ds
    ds = load_ml_posters(data_dir, train=split.train)
    return shrink_dataset(ds, split.train.user_ids, split.train.item_ids) if smoke else ds


def dataset_random811(name: str, data_dir: Path | None, seed: int, smoke: bool = False) -> tuple[Any, Any]:
    """``(dataset, split)``: the registered dataset ``name`` split by :func:`random811` (for datasets without a
    committed split file, e.g. FilmTrust); ``smoke``: both shrunk (:func:`shrink`, :func:`shrink_dataset`), or the
    synthetic dataset without ``data_dir``."""
    from fusionrec.data.datasets import load_dataset

    ds = smoke_dataset(seed) if smoke and data_dir is None else load_dataset(name, data_dir=data_dir)
    split = random811(ds.interactions, seed, f"{name}.random811")
    if smoke and data_dir is not None:
        split = shrink(split)
        ds = shrink_dataset(ds, split.train.user_ids, split.train.item_ids)
    return ds, split


def ml100k_fold(data_dir: Path | None, fold: int, smoke: bool = False) -> Any:
    """ML-100K's official fold ``u<fold>`` (``smoke``: its :func:`shrink` slice, or without ``data_dir`` a random
    8:1:1 split of the synthetic ratings, its valid part unused)."""
    from fusionrec.data.datasets.movielens import load_ml100k_fold

    if smoke and data_dir is None:
        return random811(smoke_dataset().interactions, fold, "synthetic ratings")
    split = load_ml100k_fold(data_dir / "ml-100k", fold)
    return shrink(split) if smoke else split


# ---------------------------------------------------------------------------------------------------- tuning
def _extend(values: list[Any], best: Any) -> Any | None:
    """The next value beyond the edge ``best`` of a numeric axis (geometric step, or arithmetic through 0)."""
    nums = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(nums) < 2 or len(nums) != len(values) or best not in (min(nums), max(nums)):
        return None
    lo, hi = sorted(nums)[:2] if best == min(nums) else sorted(nums)[-2:]
    if best == min(nums):
        new = best * (best / hi) if best > 0 and hi > 0 else best - (hi - best)
    else:
        new = best * (best / lo) if best > 0 and lo > 0 else best + (best - lo)
    if isinstance(best, int):
        new = round(new)
        if new == best or new < 1:
            return None
    elif best == 0:
        return None
    return new


def tune(
    space: list[dict[str, Any]],
    score: Callable[[dict[str, Any]], float],
    *,
    max_extensions: int = 3,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, Any], float, list[str]]:
    """Grid search maximising ``score`` (a valid metric); a chosen numeric value at the grid's edge extends it.

    After the grid, every numeric axis with two or more values whose best value is its smallest or largest
    gets one more value beyond it (geometric step; the other parameters at the best setting), up to
    ``max_extensions`` times per axis.  Returns ``(best params, best score, notes on the extensions)``.
    """
    seen: dict[str, float] = {}

    def run(p: dict[str, Any]) -> float:
        key = json.dumps(p, sort_keys=True, default=str)
        if key not in seen:
            seen[key] = float(score(p))
            log(f"    {p} valid={seen[key]:.4f}")
        return seen[key]

    best, best_score = space[0], -float("inf")
    for p in space:
        v = run(p)
        if v > best_score:
            best, best_score = p, v
    axes: dict[str, list[Any]] = {}
    for k in space[0]:
        axes[k] = []
        for p in space:
            if p[k] not in axes[k]:
                axes[k].append(p[k])
    notes: list[str] = []
    for name, values in axes.items():
        for _ in range(max_extensions):
            new = _extend(values, best[name])
            if new is None:
                break
            values.append(new)
            trial = {**best, name: new}
            v = run(trial)
            notes.append(f"{name} {best[name]} was at the grid edge: tried {new} (valid {v:.4f})")
            if v > best_score:
                best, best_score = trial, v
            else:
                break
    return best, best_score, notes


# ---------------------------------------------------------------------------------------------------- statistics
def paired(a: Any, b: Any) -> dict[str, float]:
    """Paired t-test and Wilcoxon signed-rank of per-user vectors ``a`` vs ``b`` (the same users, same order)."""
    from fusionrec.evaluation.stats import paired_ttest, wilcoxon_test

    t, w = paired_ttest(a, b), wilcoxon_test(a, b)
    return {"diff": t.mean_difference, "t_p": t.p_value, "wilcoxon_p": w.p_value, "n": t.n}


def mean_spread(values: list[float]) -> str:
    """``mean ± half-range`` over seeds (``x`` alone for one seed)."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    if len(v) == 1:
        return f"{v[0]:.4f}"
    return f"{v.mean():.4f} ± {(v.max() - v.min()) / 2:.4f}"


#: user activity buckets (training interactions) and item popularity buckets (training interactions)
USER_BUCKETS = ((0, 20, "<=20"), (21, 100, "21-100"), (101, 10**9, ">100"))
ITEM_BUCKETS = ((0, 5, "items <=5"), (6, 30, "items 6-30"), (31, 10**9, "items >30"))


def user_buckets(train: Any, users: Any) -> dict[str, Any]:
    """Boolean masks over ``users`` by their number of training interactions (:data:`USER_BUCKETS`)."""
    import numpy as np

    counts = np.asarray(train.user_counts())[np.asarray(users)]
    return {label: (counts >= lo) & (counts <= hi) for lo, hi, label in USER_BUCKETS}


def item_bucket_recall(train: Any, test: Any, users: Any, recs: Any, k: int = 20) -> dict[str, float]:
    """Recall@k pooled over the held-out pairs whose item falls in each popularity bucket (:data:`ITEM_BUCKETS`).

    ``recs`` are the top lists of ``users`` (rows aligned); a pair counts as a hit when its item is in the
    user's top ``k``.  Pooled over pairs, so a bucket's value is the share of its held-out pairs found.
    """
    import numpy as np

    counts = np.asarray(train.item_counts())
    m = test.matrix.tocsr()
    hits = {label: 0 for _, _, label in ITEM_BUCKETS}
    total = dict(hits)
    for row, u in enumerate(np.asarray(users)):
        items = m.indices[m.indptr[u] : m.indptr[u + 1]]
        top = set(np.asarray(recs[row, :k]).tolist())
        for i in items:
            c = counts[i]
            for lo, hi, label in ITEM_BUCKETS:
                if lo <= c <= hi:
                    total[label] += 1
                    hits[label] += int(i in top)
    return {label: hits[label] / total[label] if total[label] else float("nan") for label in hits}
