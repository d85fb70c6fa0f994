"""Feature cache keyed by the sha256 of each item's content and the encoder's name, version and parameters.

Layout: ``<cache_dir>/features/<encoder.cache_key()>/rows.sqlite``, one table ``rows(hash TEXT PRIMARY KEY,
vec BLOB)`` holding float32 bytes, plus ``meta(key, value)`` with the dimension.  No pickle.

The content hash is the sha256 of the file bytes for paths (so a renamed file still hits and an edited
file recomputes), of the UTF-8 bytes for texts, and of dtype + shape + bytes for arrays.  A second run
over the same items reads every row from SQLite; a changed item is the only one recomputed.  Failed
items are never cached (they are retried next time).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from fusionrec.errors import ConfigError
from fusionrec.features.base import Encoder, FeatureReport

__all__ = ["FeatureCache", "content_hash"]

_CHUNK = 1 << 20


def content_hash(item: Any, paths: bool = False) -> str | None:
    """sha256 hex digest of an item's content; ``None`` when it cannot be read (missing file).

    ``paths=True`` means strings are file paths (image / audio / video encoders), else text.
    """
    h = hashlib.sha256()
    if isinstance(item, os.PathLike) or (paths and isinstance(item, str)):
        try:
            with open(item, "rb") as fh:
                h.update(b"file:")
                for block in iter(lambda: fh.read(_CHUNK), b""):
                    h.update(block)
        except OSError:
            return None
    elif isinstance(item, str):
        h.update(b"text:" + item.encode("utf-8", "surrogatepass"))
    elif isinstance(item, bytes | bytearray | memoryview):
        h.update(b"bytes:" + bytes(item))
    elif isinstance(item, np.ndarray):
        arr = np.ascontiguousarray(item)
        if arr.dtype == object:
            return None
        h.update(f"array:{arr.dtype.str}:{arr.shape}:".encode() + arr.tobytes())
    elif isinstance(item, tuple):
        h.update(b"tuple:")
        for part in item:
            sub = content_hash(part, paths)
            if sub is None:
                return None
            h.update(sub.encode())
    elif isinstance(item, list | set | frozenset):
        labels = sorted(map(str, item)) if not isinstance(item, list) else [str(x) for x in item]
        h.update(b"labels:" + json.dumps(labels).encode())
    elif isinstance(item, int | float | np.generic):
        h.update(f"scalar:{item!r}".encode())
    else:
        return None
    return h.hexdigest()


class FeatureCache:
    """Per-item feature rows stored by content hash (see the module docstring).

    Parameters
    ----------
    root
        Cache root; defaults to :func:`fusionrec.config.cache_dir`.  Rows go under ``root/features/``.
    chunk_size
        Items encoded and committed at a time (an interrupted run keeps the finished chunks).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *, chunk_size: int = 512) -> None:
        from fusionrec.config import cache_dir

        if int(chunk_size) < 1:
            raise ConfigError("chunk_size must be >= 1")
        self.chunk_size = int(chunk_size)
        self.root = Path(root) if root is not None else cache_dir()
        self.base = self.root / "features"

    def path_for(self, encoder: Encoder) -> Path:
        return self.base / encoder.cache_key()

    @contextmanager
    def _connect(self, encoder: Encoder) -> Iterator[sqlite3.Connection]:
        folder = self.path_for(encoder)
        folder.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(folder / "rows.sqlite", timeout=60)) as con:
            con.execute("CREATE TABLE IF NOT EXISTS rows (hash TEXT PRIMARY KEY, vec BLOB NOT NULL)")
            con.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            yield con

    def clear(self, encoder: Encoder | None = None) -> None:
        """Delete the cached rows of one encoder (or all of them)."""
        import shutil

        shutil.rmtree(self.path_for(encoder) if encoder is not None else self.base, ignore_errors=True)

    def transform(self, encoder: Encoder, raw: Any, ids: Any = None) -> tuple[np.ndarray, FeatureReport]:
        """``encoder.transform_report(raw, ids)`` through the cache: hits are read, misses computed and stored."""
        if not encoder.cacheable:
            return encoder.transform_report(raw, ids=ids)
        encoder._check_fitted()
        items = encoder._as_items(raw)
        paths = getattr(encoder, "item_kind", "object") == "file"
        hashes = [None if x is None else content_hash(x, paths) for x in items]
        dim = encoder.dim
        out = np.zeros((len(items), dim), dtype=np.float32)
        report = FeatureReport(n_items=len(items))
        with self._connect(encoder) as con:
            found: dict[str, bytes] = {}
            keys = sorted({h for h in hashes if h is not None})
            for s in range(0, len(keys), 500):
                chunk = keys[s : s + 500]
                marks = ",".join("?" * len(chunk))
                found.update(con.execute(f"SELECT hash, vec FROM rows WHERE hash IN ({marks})", chunk).fetchall())
            missing: list[int] = []
            for j, h in enumerate(hashes):
                blob = found.get(h) if h is not None else None
                if blob is not None and len(blob) == 4 * dim:
                    out[j] = np.frombuffer(blob, dtype=np.float32)
                else:
                    missing.append(j)
            report.n_cached = len(items) - len(missing)
            report.n_computed = len(missing)
            # misses are computed and committed in chunks, so an interrupted run keeps what it finished; one
            # progress bar over all of them (the encoders' own bars inside a chunk are not drawn)
            from fusionrec._progress import overall

            with overall(len(missing), f"encoding {encoder.name}") as advance:
                for s in range(0, len(missing), self.chunk_size):
                    part = missing[s : s + self.chunk_size]
                    rows, errors = encoder._encode_batch([items[j] for j in part])
                    advance(len(part))
                    out[part] = rows
                    new = []
                    for m, j in enumerate(part):
                        if m in errors:
                            report.add_failure(j, errors[m])
                        elif hashes[j] is not None:
                            new.append((hashes[j], np.ascontiguousarray(rows[m], dtype=np.float32).tobytes()))
                    if new:
                        with con:
                            con.executemany("INSERT OR REPLACE INTO rows (hash, vec) VALUES (?, ?)", new)
                            con.execute(
                                "INSERT OR REPLACE INTO meta (key, value) VALUES ('dim', ?), ('encoder', ?)",
                                (str(dim), repr(encoder)),
                            )
        report.failures.sort(key=lambda f: f.position)
        if ids is not None:
            report.with_ids(ids)
        return out, report
