"""Tabular and categorical encoders: numeric scaling, one-hot, multi-hot and feature hashing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from fusionrec._params import BOOL, POSITIVE_INT, Options
from fusionrec.errors import DataError
from fusionrec.features.base import Encoder

__all__ = ["HashingEncoder", "MultiHotEncoder", "TabularEncoder"]


def _labels(item: Any) -> list[str]:
    """Labels of one item: a list of labels, or a string of ``|``-separated labels (``"drama|comedy"``)."""
    if item is None or (isinstance(item, float) and item != item):
        return []
    if isinstance(item, str):
        return [x for x in (part.strip() for part in item.split("|")) if x]
    return [str(x) for x in item]


class MultiHotEncoder(Encoder):
    """Multi-hot label sets (scikit-learn ``MultiLabelBinarizer``): column ``c`` is 1 when label ``c`` is present.

    Each item is a list of labels or one ``"a|b"`` string.  Labels unseen at fit time are ignored.  ``normalize`` divides each row by the square root of its label
    count (unit L2 norm).  ``min_count`` drops labels seen fewer times in the fitting data.
    """

    name = "multihot"
    stateless = False
    cacheable = False
    state_attrs = ("dim_", "classes_")
    _param_constraints: ClassVar[dict[str, list[Any]]] = {"min_count": [*POSITIVE_INT], "normalize": [*BOOL]}

    def __init__(self, *, min_count: int = 1, normalize: bool = False) -> None:
        self.min_count = min_count
        self.normalize = normalize

    def _fit(self, raw: Any) -> None:
        from collections import Counter

        counts = Counter(label for item in self._as_items(raw) for label in set(_labels(item)))
        self.classes_ = np.array(sorted(c for c, n in counts.items() if n >= int(self.min_count)), dtype=str)
        self.dim_ = len(self.classes_)

    def _encode_batch(self, items: list[Any]) -> tuple[np.ndarray, dict[int, str]]:
        lookup = {c: i for i, c in enumerate(self.classes_.tolist())}
        out = np.zeros((len(items), self.dim_), dtype=np.float32)
        for j, item in enumerate(items):
            cols = [lookup[x] for x in _labels(item) if x in lookup]
            out[j, cols] = 1.0
        if self.normalize:
            out /= np.sqrt(np.maximum(out.sum(1, keepdims=True), 1.0))
        return out, {}


class HashingEncoder(Encoder):
    """Label lists (or ``"a|b"`` strings) hashed into ``n_features`` signed buckets (scikit-learn ``FeatureHasher``).

    For high-cardinality categories (tags, authors, user ids): no vocabulary, fixed width, collisions
    partly cancelled by the sign hash.
    """

    name = "hashing"
    cacheable = False
    _param_constraints: ClassVar[dict[str, list[Any]]] = {"n_features": [*POSITIVE_INT], "normalize": [*BOOL]}

    def __init__(self, *, n_features: int = 256, normalize: bool = True) -> None:
        self.n_features = n_features
        self.normalize = normalize

    @property
    def dim(self) -> int:
        return int(self.n_features)

    def _encode_batch(self, items: list[Any]) -> tuple[np.ndarray, dict[int, str]]:
        from sklearn.feature_extraction import FeatureHasher

        hasher = FeatureHasher(n_features=int(self.n_features), input_type="string", alternate_sign=True)
        out = np.asarray(hasher.transform([_labels(x) for x in items]).toarray(), dtype=np.float32)
        if self.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out, {}


class TabularEncoder(Encoder):
    """A DataFrame of numeric and categorical columns (or one ``{column: value}`` dict per item) -> a dense matrix.

    * numeric columns: missing values imputed with the training mean, then ``"standard"``
      (``(x - mean) / std``), ``"minmax"`` (to [0, 1]) or no scaling;
    * categorical (object, string, category, bool) columns with at most ``max_onehot`` distinct training values:
      one-hot (unknown values and missing -> all zeros);
    * categorical columns with more values: hashed into ``n_hash`` signed buckets.

    Parameters
    ----------
    numeric
        ``"standard"``, ``"minmax"`` or ``"none"``.
    max_onehot
        Cardinality threshold between one-hot and hashing.
    n_hash
        Buckets per hashed column.
    columns
        Columns to use (default: all).
    """

    name = "tabular"
    stateless = False
    cacheable = False
    state_attrs = ("dim_", "numeric_columns_", "numeric_stats_", "onehot_columns_", "categories_", "hash_columns_")

    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "numeric": [Options(("standard", "minmax", "none"))],
        "max_onehot": [*POSITIVE_INT],
        "n_hash": [*POSITIVE_INT],
        "columns": [list, None],
    }

    def __init__(
        self, *, numeric: str = "standard", max_onehot: int = 50, n_hash: int = 32, columns: list[str] | None = None
    ) -> None:
        self.numeric = numeric
        self.max_onehot = max_onehot
        self.n_hash = n_hash
        self.columns = columns

    def _frame(self, raw: Any) -> Any:
        import pandas as pd

        if isinstance(raw, list | tuple) and raw and all(isinstance(r, Mapping) for r in raw):
            # one {column: value} dict per item (a new item as posted); absent columns are missing values
            raw = pd.DataFrame.from_records([dict(r) for r in raw])
            fitted = [*self._fitted_columns(), *(self.columns or [])]
            for col in fitted:
                if col not in raw.columns:
                    raw[col] = None
        if not isinstance(raw, pd.DataFrame):
            raise DataError(
                f"{type(self).__name__} expects a pandas DataFrame or a list of {{column: value}} dicts, "
                f"got {type(raw).__name__}"
            )
        if self.columns is not None:
            missing = [c for c in self.columns if c not in raw.columns]
            if missing:
                raise DataError(f"columns {missing} are missing from the table; present: {list(raw.columns)}")
            return raw[list(self.columns)]
        return raw

    def _as_items(self, raw: Any) -> Any:
        return self._frame(raw)

    def _fitted_columns(self) -> list[str]:
        names = ("numeric_columns_", "onehot_columns_", "hash_columns_")
        return [str(c) for n in names if hasattr(self, n) for c in getattr(self, n).tolist()]

    def _fit(self, raw: Any) -> None:
        import pandas as pd

        frame = self._frame(raw)
        numeric_cols, onehot_cols, hash_cols = [], [], []
        stats: list[list[float]] = []
        categories: list[str] = []
        for col in frame.columns:
            series = frame[col]
            if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
                values = series.to_numpy(dtype=np.float64, na_value=np.nan)
                finite = values[np.isfinite(values)]
                mean = float(finite.mean()) if finite.size else 0.0
                std = float(finite.std()) if finite.size else 1.0
                lo = float(finite.min()) if finite.size else 0.0
                hi = float(finite.max()) if finite.size else 1.0
                numeric_cols.append(str(col))
                stats.append([mean, std if std > 1e-12 else 1.0, lo, hi if hi > lo else lo + 1.0])
            else:
                values = series.dropna().astype(str)
                uniq = sorted(values.unique().tolist())
                if len(uniq) <= int(self.max_onehot):
                    onehot_cols.append(str(col))
                    categories.extend(f"{col}\x1f{v}" for v in uniq)
                else:
                    hash_cols.append(str(col))
        self.numeric_columns_ = np.array(numeric_cols, dtype=str)
        self.numeric_stats_ = np.array(stats, dtype=np.float64).reshape(-1, 4)
        self.onehot_columns_ = np.array(onehot_cols, dtype=str)
        self.categories_ = np.array(categories, dtype=str)
        self.hash_columns_ = np.array(hash_cols, dtype=str)
        self.dim_ = len(numeric_cols) + len(categories) + len(hash_cols) * int(self.n_hash)

    def _encode_batch(self, items: Any) -> tuple[np.ndarray, dict[int, str]]:
        frame = items
        n = len(frame)
        parts: list[np.ndarray] = []
        for c, (mean, std, lo, hi) in zip(self.numeric_columns_.tolist(), self.numeric_stats_):
            if c not in frame.columns:
                raise DataError(f"column {c!r} seen at fit time is missing from the table")
            import pandas as pd

            x = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            x = np.where(np.isfinite(x), x, mean)
            if self.numeric == "standard":
                x = (x - mean) / std
            elif self.numeric == "minmax":
                x = (x - lo) / (hi - lo)
            parts.append(x[:, None])
        if len(self.categories_):
            lookup = {k: i for i, k in enumerate(self.categories_.tolist())}
            onehot = np.zeros((n, len(lookup)))
            for c in self.onehot_columns_.tolist():
                keys = [f"{c}\x1f{v}" for v in frame[c].astype(str).tolist()]
                present = frame[c].notna().to_numpy()
                rows = [j for j, k in enumerate(keys) if present[j] and k in lookup]
                onehot[rows, [lookup[keys[j]] for j in rows]] = 1.0
            parts.append(onehot)
        for c in self.hash_columns_.tolist():
            values = [[] if v is None or v != v else [f"{c}={v}"] for v in frame[c].tolist()]
            parts.append(HashingEncoder(n_features=int(self.n_hash), normalize=False)._encode_batch(values)[0])
        out = np.hstack(parts).astype(np.float32) if parts else np.zeros((n, 0), dtype=np.float32)
        return out, {}
