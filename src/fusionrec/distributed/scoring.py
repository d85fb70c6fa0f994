"""Batch scoring and evaluation sharded by user over Ray workers.

The fitted model is broadcast once: its saved directory (``manifest.json`` + ``arrays.npz``, the no-pickle format
of :meth:`Recommender.save`) is read as bytes and put in the object store; each worker (a Ray actor, one CPU)
loads it once.  The users are cut into shards; each shard is one task on a worker, which scores its users in
batches and returns the top-K item indices and scores (for evaluation: the top-K, the hit flags and the AUC of
:func:`fusionrec.evaluation.protocol.rank_batch`, the same function the single-process evaluator calls).  The
driver gathers the shards in order and writes the Parquet file (recommendation) or aggregates the per-user rows
with :func:`~fusionrec.evaluation.protocol.summarise_ranking` (evaluation), so the figures equal
:func:`~fusionrec.evaluation.evaluate_ranking`'s.

``address=None`` runs the same shards in this process, one after the other, without Ray.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fusionrec.errors import ConfigError
from fusionrec.evaluation.protocol import DEFAULT_METRICS

if TYPE_CHECKING:
    from fusionrec.data.interactions import Interactions
    from fusionrec.evaluation.protocol import RankingPlan, RankingResult
    from fusionrec.models.base import Recommender
    from fusionrec.rerank import Reranker
    from fusionrec.serving.bundle import Bundle

__all__ = ["ScoringStats", "batch_recommend_ray", "evaluate_ranking_ray", "model_payload"]


@dataclass
class ScoringStats:
    """Per-stage costs of one sharded run (seconds and bytes), for the scaling model.

    ``seconds``: ``payload`` (model saved and read as bytes), ``put`` (bytes into the object store), ``workers``
    (actors started and the model loaded on each, wall time), ``tasks`` (scoring wall time), ``write`` (Parquet);
    ``task_seconds`` the time of each shard's task inside its worker (``task_cpu_seconds`` its CPU time, which a
    busy shared machine does not inflate), ``load_seconds`` each worker's model load.
    """

    users: int = 0
    workers: int = 0
    shards: int = 0
    payload_bytes: int = 0
    result_bytes: int = 0
    rows_written: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    task_seconds: list[float] = field(default_factory=list)
    task_cpu_seconds: list[float] = field(default_factory=list)
    load_seconds: list[float] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- model broadcast
def _read_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def model_payload(source: Recommender | Bundle | str | os.PathLike[str]) -> tuple[Recommender, dict[str, bytes]]:
    """The model of ``source`` and its saved directory as ``{relative path: bytes}`` (what is broadcast).

    ``source`` is a fitted model, a :class:`~fusionrec.serving.bundle.Bundle`, a bundle directory (written by
    ``fusionrec train`` / ``save_bundle``) or a model directory (written by ``model.save``); directories are read
    as they are, not saved again.

    Raises
    ------
    ConfigError
        ``source`` is none of these.
    BundleError
        A directory cannot be read (missing, damaged).
    """
    from fusionrec.models.base import Recommender, load_model
    from fusionrec.serving.bundle import MANIFEST as BUNDLE_MANIFEST
    from fusionrec.serving.bundle import MODEL_DIR, Bundle, load_bundle

    if isinstance(source, Bundle):
        source = source.model
    if isinstance(source, Recommender):
        with tempfile.TemporaryDirectory(prefix="fusionrec-ray-") as tmp:
            path = source.save(Path(tmp) / "model")
            return source, _read_tree(path)
    if isinstance(source, str | os.PathLike):
        root = Path(source)
        if (root / BUNDLE_MANIFEST).is_file():
            return load_bundle(root).model, _read_tree(root / MODEL_DIR)
        if (root / "manifest.json").is_file():
            return load_model(root), _read_tree(root)
        raise ConfigError(
            f"{root} is neither a bundle (bundle.json) nor a model directory (manifest.json); write one with "
            "`fusionrec train` or model.save(path)"
        )
    raise ConfigError(f"expected a fitted model, a Bundle or a directory, got {type(source).__name__}")


def _model_from_payload(files: dict[str, bytes]) -> Recommender:
    """Load the broadcast model (written to a temporary directory, read back fully, the directory removed)."""
    from fusionrec.models.base import load_model

    with tempfile.TemporaryDirectory(prefix="fusionrec-ray-") as tmp:
        root = Path(tmp) / "model"
        for rel, data in files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return load_model(root)


class _ModelWorker:
    """One worker: loads the broadcast model once, then ranks the user shards it is given."""

    def __init__(self, files: dict[str, bytes], plan: RankingPlan | None = None) -> None:
        start = time.perf_counter()
        self.model = _model_from_payload(files)
        self.plan = plan
        self.load_seconds = time.perf_counter() - start

    def loaded(self) -> float:
        return self.load_seconds

    def recommend(
        self, users: np.ndarray, k: int, batch_size: int, candidates: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
        start, cpu = time.perf_counter(), time.process_time()
        idx, scores = self.model.recommend(users, k, candidates=candidates, batch_size=batch_size)
        return idx, scores, (time.perf_counter() - start, time.process_time() - cpu)

    def rank(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]:
        """Rank a shard of the plan's users (whole batches of ``plan.batch_size``) with :func:`rank_batch`."""
        from fusionrec.evaluation.protocol import empty_outcome, rank_batch

        if self.plan is None:
            raise ConfigError("this worker was started without a ranking plan (a batch-scoring worker)")
        start, cpu = time.perf_counter(), time.process_time()
        size = self.plan.batch_size
        parts = [rank_batch(self.model, self.plan, users[s : s + size]) for s in range(0, len(users), size)]
        if not parts:
            return (*empty_outcome(0, self.plan.kmax), (time.perf_counter() - start, time.process_time() - cpu))
        recs, hits, auc = (np.concatenate([p[j] for p in parts]) for j in range(3))
        return recs, hits, auc, (time.perf_counter() - start, time.process_time() - cpu)


# ---------------------------------------------------------------------------------------------- shard runner
def _check_positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _shards(n: int, num_shards: int, align: int) -> list[slice]:
    """``num_shards`` contiguous slices of ``range(n)`` (fewer when ``n`` is small), cut at multiples of ``align``."""
    if n == 0:
        return []
    blocks = -(-n // align)
    parts = np.array_split(np.arange(blocks), max(1, min(num_shards, blocks)))
    return [slice(int(p[0]) * align, min(n, (int(p[-1]) + 1) * align)) for p in parts]


def _run(
    files: dict[str, bytes],
    plan: RankingPlan | None,
    calls: list[tuple[str, tuple[Any, ...]]],
    *,
    address: str | None,
    num_workers: int | None,
    stats: ScoringStats,
) -> Iterator[Any]:
    """Yield ``getattr(worker, method)(*args)`` for each call, in order, from workers in this process or on Ray."""
    stats.payload_bytes = sum(len(b) for b in files.values())
    if address is None:
        start = time.perf_counter()
        worker = _ModelWorker(files, plan)
        stats.workers, stats.load_seconds = 1, [worker.load_seconds]
        stats.seconds["workers"] = time.perf_counter() - start
        for method, args in calls:
            yield getattr(worker, method)(*args)
        return
    from fusionrec.distributed._cluster import import_ray, init_ray

    start = time.perf_counter()
    init_ray(address)
    ray = import_ray()
    from ray.util import ActorPool

    stats.seconds["connect"] = time.perf_counter() - start
    start = time.perf_counter()
    files_ref = ray.put(files)
    plan_ref = ray.put(plan) if plan is not None else None
    stats.seconds["put"] = time.perf_counter() - start
    n = num_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    n = max(1, min(n, len(calls)))
    start = time.perf_counter()
    remote = ray.remote(num_cpus=1, max_restarts=0)(_ModelWorker)
    actors = [remote.remote(files_ref, plan_ref) for _ in range(n)]
    stats.load_seconds = [float(x) for x in ray.get([a.loaded.remote() for a in actors])]
    stats.workers = n
    stats.seconds["workers"] = time.perf_counter() - start
    pool = ActorPool(actors)
    fn: Callable[[Any, tuple[str, tuple[Any, ...]]], Any] = lambda a, c: getattr(a, c[0]).remote(*c[1])
    try:
        yield from pool.map(fn, calls)
    finally:
        for a in actors:
            ray.kill(a)


def _default_workers(address: str | None, num_workers: int | None) -> int:
    """``num_workers``, else 1 in this process, else the CPUs of the cluster at ``address`` (connecting to it)."""
    if num_workers is not None:
        return num_workers
    if address is None:
        return 1
    from fusionrec.distributed._cluster import import_ray, init_ray

    init_ray(address)
    return max(1, int(import_ray().cluster_resources().get("CPU", 1)))


def _startup(stats: ScoringStats) -> float:
    """Seconds spent before the first task could run (connect, put, workers started): part of the first wait."""
    return sum(stats.seconds.get(key, 0.0) for key in ("connect", "put", "workers"))


# ---------------------------------------------------------------------------------------------- public API
def _user_indices(model: Recommender, users: Sequence[Any] | np.ndarray | None) -> np.ndarray:
    if users is None:
        return np.arange(len(model.user_id_values_), dtype=np.int64)
    return model.user_indices(np.asarray(users))


def _raw(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return values[idx]


def batch_recommend_ray(
    model: Recommender | Bundle | str | os.PathLike[str],
    users: Sequence[Any] | np.ndarray | None,
    k: int,
    out_parquet: str | os.PathLike[str],
    *,
    address: str | None = "local",
    num_workers: int | None = None,
    num_shards: int | None = None,
    batch_size: int = 1024,
    stats: ScoringStats | None = None,
) -> Path:
    """Write the top-``k`` items of ``users`` to a Parquet file ``user, item, rank, score`` (raw ids).

    Parameters
    ----------
    model
        A fitted model, a :class:`~fusionrec.serving.bundle.Bundle`, or a bundle / model directory.
    users
        Raw user ids (as in the training data); ``None``: every user the model knows by raw id.
    k
        Items per user; items the user has in the training data are excluded, as by ``recommend_ids``.  Slots
        that cannot be filled are left out (a user may have fewer than ``k`` rows).
    out_parquet
        The Parquet file to write (rows grouped by user, in the order of ``users``; ``rank`` starts at 1).
    address
        The Ray cluster (see :func:`fusionrec.distributed.init_ray`); ``None`` runs the same shards in this
        process without Ray.
    num_workers
        Ray workers (actors of one CPU, each loading the model once); default: the cluster's CPUs.
    num_shards
        User shards (tasks); default: 4 per worker.
    batch_size
        Users scored at once inside a task (memory ``batch_size x n_items`` scores).
    stats
        Filled with the per-stage costs when given.

    Raises
    ------
    ConfigError
        Bad ``k`` / counts, or Ray missing.
    UnknownIdError
        A user id is unknown to the model.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    for name, value in (("num_workers", num_workers), ("num_shards", num_shards), ("batch_size", batch_size)):
        _check_positive(name, value)
    st = stats if stats is not None else ScoringStats()
    start = time.perf_counter()
    fitted, files = model_payload(model)
    st.seconds["payload"] = time.perf_counter() - start
    idx_users = _user_indices(fitted, users)
    st.users = len(idx_users)
    user_values, item_values = fitted.user_id_values_, fitted.item_id_values_
    n_named = len(item_values)
    cand = None if n_named == fitted.n_items_ else np.arange(n_named, dtype=np.int64)
    workers = _default_workers(address, num_workers)
    parts = _shards(len(idx_users), num_shards or 4 * workers, 1)  # a user's list does not depend on its batch
    st.shards = len(parts)
    calls = [("recommend", (idx_users[p], k, batch_size, cand)) for p in parts]
    out = Path(out_parquet)
    out.parent.mkdir(parents=True, exist_ok=True)
    schema = None
    writer = None
    tasks = write = 0.0
    tick = time.perf_counter()
    try:
        for p, (idx, scores, (seconds, cpu)) in zip(
            parts, _run(files, None, calls, address=address, num_workers=workers, stats=st)
        ):
            st.task_seconds.append(float(seconds))
            st.task_cpu_seconds.append(float(cpu))
            st.result_bytes += int(idx.nbytes + scores.nbytes)
            w0 = time.perf_counter()
            tasks += w0 - tick
            ok = idx >= 0
            rows, cols = np.nonzero(ok)
            table = pa.table(
                {
                    "user": _raw(user_values, idx_users[p][rows]),
                    "item": _raw(item_values, idx[ok]),
                    "rank": (cols + 1).astype(np.int32),
                    "score": scores[ok].astype(np.float32),
                }
            )
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(out, schema)
            writer.write_table(table)
            st.rows_written += table.num_rows
            tick = time.perf_counter()
            write += tick - w0
        if writer is None:  # no users: an empty file with the columns
            empty_u = np.zeros(0, dtype=user_values.dtype)
            empty_i = np.zeros(0, dtype=item_values.dtype)
            pq.write_table(
                pa.table(
                    {"user": empty_u, "item": empty_i, "rank": np.zeros(0, np.int32), "score": np.zeros(0, np.float32)}
                ),
                out,
            )
    finally:
        if writer is not None:
            writer.close()
    st.seconds["tasks"] = tasks - _startup(st)
    st.seconds["write"] = write
    return out


def evaluate_ranking_ray(
    model: Recommender | Bundle | str | os.PathLike[str],
    train: Interactions,
    test: Interactions,
    *,
    k: int | Sequence[int] = (10, 20),
    metrics: Sequence[str] = DEFAULT_METRICS,
    exclude: Sequence[Interactions] | None = None,
    candidates: np.ndarray | None = None,
    users: np.ndarray | None = None,
    relevance_threshold: float | None = None,
    compute_auc: bool = False,
    item_features: np.ndarray | None = None,
    batch_size: int = 1024,
    cold_users: bool = False,
    rerank: Reranker | None = None,
    rerank_depth: int = 100,
    item_groups: np.ndarray | None = None,
    user_groups: np.ndarray | None = None,
    address: str | None = "local",
    num_workers: int | None = None,
    num_shards: int | None = None,
    stats: ScoringStats | None = None,
) -> RankingResult:
    """:func:`fusionrec.evaluation.evaluate_ranking` with the users sharded over Ray workers (same figures).

    Every evaluation parameter is :func:`~fusionrec.evaluation.evaluate_ranking`'s, with its meaning: both build the
    same :class:`~fusionrec.evaluation.protocol.RankingPlan` (:func:`~fusionrec.evaluation.protocol.plan_ranking`),
    rank its batches with :func:`~fusionrec.evaluation.protocol.rank_batch` and summarise them with
    :func:`~fusionrec.evaluation.protocol.summarise_ranking`.  ``address``, ``num_workers``, ``num_shards`` and
    ``stats`` as in :func:`batch_recommend_ray`.  Shards are runs of whole batches, so every user is scored in the
    same batch as in one process.  ``RankingResult.info["workers"]`` / ``["shards"]`` say how the work was spread.
    """
    from fusionrec.evaluation.protocol import empty_outcome, plan_ranking, summarise_ranking

    for name, value in (("num_workers", num_workers), ("num_shards", num_shards)):
        _check_positive(name, value)
    st = stats if stats is not None else ScoringStats()
    start = time.perf_counter()
    plan = plan_ranking(
        train,
        test,
        k=k,
        metrics=metrics,
        exclude=exclude,
        candidates=candidates,
        users=users,
        relevance_threshold=relevance_threshold,
        compute_auc=compute_auc,
        item_features=item_features,
        batch_size=batch_size,
        cold_users=cold_users,
        rerank=rerank,
        rerank_depth=rerank_depth,
        item_groups=item_groups,
        user_groups=user_groups,
        stacklevel=2,
    )
    t0 = time.perf_counter()
    _, files = model_payload(model)
    st.seconds["payload"] = time.perf_counter() - t0
    st.users = len(plan.users)
    workers = _default_workers(address, num_workers)
    parts = _shards(len(plan.users), num_shards or 4 * workers, plan.batch_size)
    st.shards = len(parts)
    calls = [("rank", (plan.users[p],)) for p in parts]
    recs, hits, auc = empty_outcome(len(plan.users), plan.kmax)
    t0 = time.perf_counter()
    for p, (r, h, a, (seconds, cpu)) in zip(
        parts, _run(files, plan.for_workers(), calls, address=address, num_workers=workers, stats=st)
    ):
        recs[p], hits[p], auc[p] = r, h, a
        st.task_seconds.append(float(seconds))
        st.task_cpu_seconds.append(float(cpu))
        st.result_bytes += int(r.nbytes + h.nbytes + a.nbytes)
    st.seconds["tasks"] = time.perf_counter() - t0 - _startup(st)
    result = summarise_ranking(plan, recs, hits, auc, seconds=time.perf_counter() - start)
    result.info.update(workers=st.workers, shards=st.shards)
    return result
