"""Feature extraction over Ray Data: the items are sharded, the fitted encoder is broadcast.

``extract_features_ray(encoder, inputs)`` gives the rows ``FeatureCache.transform`` (or
``encoder.transform_report``) gives in one process, in the same order, with the same report counts.  The driver
fits the encoder when needed, stores it with :func:`~fusionrec.features.encoder_to_state` (JSON metadata and
arrays, no pickle of the encoder object) and puts that state in the object store once; each worker of a Ray Data
actor pool rebuilds the encoder from it once (pretrained weights load there, once per worker, from the installed
packages) and encodes whole batches through the content-hash :class:`~fusionrec.features.FeatureCache`, so rows
already in the cache are read, not recomputed, and new ones are written for the next run.  On several machines
the cache folder must be shared (or each machine keeps its own; then only hits differ, never the rows).

Items must be strings: texts, or file paths for file encoders (image, audio, video); ``None`` marks a missing item
(a zero row and a failure, as in one process).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fusionrec.errors import ConfigError
from fusionrec.features.base import Encoder, FeatureReport, Pipeline
from fusionrec.features.cache import FeatureCache

if TYPE_CHECKING:
    from fusionrec.data.modalities import Modality

__all__ = ["ExtractionStats", "encode_modality_ray", "extract_features_ray"]


@dataclass
class ExtractionStats:
    """Per-stage costs of one :func:`extract_features_ray` run (seconds and bytes), for the scaling model."""

    n_items: int = 0
    workers: int = 0
    batches: int = 0
    state_bytes: int = 0
    input_bytes: int = 0
    output_bytes: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


class _EncoderUDF:
    """A Ray Data actor: rebuilds the encoder once from its stored state, then encodes batches (with the cache)."""

    def __init__(self, meta: dict[str, Any], arrays: dict[str, np.ndarray], cache_root: str | None, chunk: int):
        from fusionrec.features.state import encoder_from_state

        self.encoder = encoder_from_state(meta, arrays)
        self.cache = None if cache_root is None else FeatureCache(cache_root, chunk_size=chunk)

    def __call__(self, batch: Any) -> dict[str, np.ndarray]:
        pos = batch["pos"].to_numpy()
        items = batch["item"].to_pylist()
        if self.cache is not None:
            rows, report = self.cache.transform(self.encoder, items)
        else:
            rows, report = self.encoder.transform_report(items)
        reasons = np.full(len(items), "", dtype=object)
        for f in report.failures:
            reasons[f.position] = f.reason or "failed"
        cached = np.zeros(len(items), dtype=np.int64)
        if len(items):
            cached[0] = report.n_cached  # the batch's count on its first row: the column sums to the total
        return {
            "pos": pos,
            "vec": np.asarray(rows, dtype=np.float32).reshape(len(items), -1),
            "reason": reasons.astype(str),
            "cached": cached,
        }


def _cache_root(cache: bool | str | os.PathLike[str] | FeatureCache | None) -> tuple[str | None, int]:
    if cache is None or cache is False:
        return None, 512
    if isinstance(cache, FeatureCache):
        return str(cache.root), cache.chunk_size
    if cache is True:
        return str(FeatureCache().root), 512
    return str(cache), 512


def _items(encoder: Encoder, inputs: Any) -> list[str | None]:
    items = encoder._as_items(inputs)
    files = getattr(encoder, "item_kind", "object") == "file"
    out: list[str | None] = []
    for j, x in enumerate(items):
        if files and isinstance(x, os.PathLike):
            x = os.fspath(x)
        if x is not None and not isinstance(x, str):
            raise ConfigError(
                f"extract_features_ray takes texts or file paths (str) and None for missing items; item {j} is a "
                f"{type(x).__name__}: write arrays to files first, or encode them in one process "
                "(fusionrec.features.encode_modality)"
            )
        out.append(x)
    return out


def _positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def extract_features_ray(
    encoder: Encoder,
    inputs: Sequence[Any],
    *,
    address: str | None = "local",
    batch_size: int = 256,
    concurrency: int | None = None,
    cache: bool | str | os.PathLike[str] | FeatureCache | None = True,
    ids: Any = None,
    stats: ExtractionStats | None = None,
) -> tuple[np.ndarray, FeatureReport]:
    """Encode ``inputs`` over a Ray cluster: ``(float32 [n, d] in input order, FeatureReport)``.

    Parameters
    ----------
    encoder
        A fusionrec encoder (registered, so that its state can be stored).  It is fitted on ``inputs`` here when
        it is not fitted yet, like :func:`fusionrec.features.encode_modality` does.  For a
        :class:`~fusionrec.features.Pipeline` the first encoder runs on the cluster and the (cheap)
        post-processing steps run here.
    inputs
        Texts, or file paths for file encoders (image, audio, video); ``None`` for a missing item.
    address
        The Ray cluster (see :func:`fusionrec.distributed.init_ray`: ``"local"``, ``"auto"``, ``"HOST:PORT"``).
    batch_size
        Items per Ray Data block and per encoder call.
    concurrency
        Encoder workers (actors, one CPU each); default: the cluster's CPUs.
    cache
        As in ``encode_modality``: ``True`` (the default cache folder), ``False``/``None``, a folder or a
        :class:`FeatureCache`; the workers read and write it.
    ids
        Raw ids aligned with ``inputs``, to name the failed items in the report.
    stats
        Filled with the per-stage costs (state bytes, input bytes, seconds) when given.

    Raises
    ------
    ConfigError
        Ray is missing, an item is not a string, or ``batch_size`` / ``concurrency`` is not a positive integer.
    """
    _positive("batch_size", batch_size)
    _positive("concurrency", concurrency)
    if isinstance(encoder, Pipeline):
        base = encoder.encoder
        if not base.is_fitted:
            base.fit(inputs)
        rows, report = extract_features_ray(
            base,
            inputs,
            address=address,
            batch_size=batch_size,
            concurrency=concurrency,
            cache=cache,
            ids=ids,
            stats=stats,
        )
        for step in encoder.steps:
            rows = step.fit_transform(rows) if not step.is_fitted else step.transform(rows)
        return rows, report
    st = stats if stats is not None else ExtractionStats()
    t0 = time.perf_counter()
    items = _items(encoder, inputs)
    if not encoder.is_fitted:
        encoder.fit(items)
    st.seconds["fit"] = time.perf_counter() - t0
    n = len(items)
    st.n_items = n
    dim = encoder.dim
    out = np.zeros((n, dim), dtype=np.float32)
    report = FeatureReport(n_items=n)
    if n == 0:
        return out, report

    from fusionrec.distributed._cluster import import_ray, init_ray
    from fusionrec.features.state import encoder_to_state

    t0 = time.perf_counter()
    init_ray(address)
    ray = import_ray()
    import pyarrow as pa

    st.seconds["connect"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    meta, arrays = encoder_to_state(encoder)
    st.state_bytes = sum(int(a.nbytes) for a in arrays.values()) + len(repr(meta))
    workers = concurrency or max(1, int(ray.cluster_resources().get("CPU", 1)))
    workers = min(workers, -(-n // batch_size))
    st.workers = workers
    st.input_bytes = int(pa.array(items, type=pa.string()).nbytes) + 8 * n
    n_blocks = -(-n // batch_size)
    st.batches = n_blocks
    root, chunk = _cache_root(cache)
    failures: dict[int, str] = {}
    with warnings.catch_warnings():
        # Ray Data's own DataContext warns about its deprecated defaults; not the caller's concern
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray(\.|$)")
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.enable_auto_log_stats = False
        # blocks built here (no metadata tasks), one per batch, so that the actors share them out
        rows_in = [{"pos": j, "item": x} for j, x in enumerate(items)]
        ds = ray.data.from_items(rows_in, override_num_blocks=n_blocks).map_batches(
            _EncoderUDF,
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1,
            fn_constructor_kwargs={"meta": meta, "arrays": dict(arrays), "cache_root": root, "chunk": chunk},
        )
        st.seconds["prepare"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            pos = np.asarray(batch["pos"], dtype=np.int64)
            vec = np.asarray(batch["vec"], dtype=np.float32).reshape(len(pos), -1)
            out[pos] = vec
            st.output_bytes += int(vec.nbytes)
            report.n_cached += int(np.asarray(batch["cached"]).sum())
            for p, reason in zip(pos.tolist(), np.asarray(batch["reason"]).tolist()):
                if reason:
                    failures[p] = str(reason)
    st.seconds["encode"] = time.perf_counter() - t0
    report.n_computed = n - report.n_cached
    for p in sorted(failures):
        report.add_failure(p, failures[p])
    if ids is not None:
        report.with_ids(ids)
    report.notes.append(f"encoded over Ray by {workers} worker(s) in {n_blocks} batch(es) of {batch_size}")
    return out, report


def encode_modality_ray(
    modality: Modality,
    encoder: Encoder | None = None,
    cache: bool | str | os.PathLike[str] | FeatureCache | None = True,
    *,
    address: str | None = "local",
    batch_size: int = 256,
    concurrency: int | None = None,
) -> tuple[Modality, FeatureReport]:
    """:func:`fusionrec.features.encode_modality` with the encoding spread over Ray (same rows, ids and report)."""
    from fusionrec.data.modalities import Modality
    from fusionrec.features.pipeline import resolve_encoder

    if modality.kind == "features":
        return modality, FeatureReport(n_items=len(modality), notes=["already dense features"])
    enc = resolve_encoder(modality.kind, encoder)
    rows, report = extract_features_ray(
        enc,
        modality.data,
        address=address,
        batch_size=batch_size,
        concurrency=concurrency,
        cache=cache,
        ids=modality.ids.ids,
    )
    rows = np.nan_to_num(np.asarray(rows, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    report.notes.append(f"encoded with {enc!r} -> {rows.shape[1]} dims")
    return Modality("features", modality.ids, rows, target=modality.target), report
