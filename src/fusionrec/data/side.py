"""Side information as data: dense item/user features by modality, their presence, the encoders that made them,
and the social graph; plus the one function that fuses modalities into a single matrix.

``SideInfo`` is built by :func:`fusionrec.features.build_side_info` (which also keeps the fitted encoders),
read by the content-aware models (``fit(train, side)``), stored in serving bundles and reused when serving
encodes a new item's raw content and when a retrain refits the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from fusionrec.errors import ConfigError, DataError

__all__ = ["SideInfo", "fuse_modalities"]


@dataclass(eq=False)
class SideInfo:
    """Dense side information aligned with the training id maps.

    ``item_features[name]`` is ``float32 [n_items, d]`` (zero rows where ``item_present[name]`` is False);
    ``user_features`` likewise for users; ``social`` is a users x users CSR.  ``item_encoders[name]`` /
    ``user_encoders[name]`` are the fitted encoders that produced a modality from raw content (absent for
    modalities given as dense features), and ``item_kinds[name]`` / ``user_kinds[name]`` the raw kind
    (``"text"``, ``"image"``, ``"categorical"``, ...) they encode.
    """

    item_features: dict[str, np.ndarray] = field(default_factory=dict)
    user_features: dict[str, np.ndarray] = field(default_factory=dict)
    item_present: dict[str, np.ndarray] = field(default_factory=dict)
    user_present: dict[str, np.ndarray] = field(default_factory=dict)
    social: sp.csr_matrix | None = None
    item_encoders: dict[str, Any] = field(default_factory=dict)
    user_encoders: dict[str, Any] = field(default_factory=dict)
    item_kinds: dict[str, str] = field(default_factory=dict)
    user_kinds: dict[str, str] = field(default_factory=dict)

    @property
    def n_items(self) -> int | None:
        """Rows of the item features (``None`` when there are none)."""
        for x in self.item_features.values():
            return int(np.asarray(x).shape[0])
        return None

    def encode_items(self, raw: Mapping[str, Sequence[Any]]) -> dict[str, np.ndarray]:
        """Dense rows for new items from raw content, with the fitted encoders.

        ``raw`` maps item modality names to one value per new item (text, an image path or array, a list of
        labels, ...; ``None`` where an item lacks that modality).  Dense modalities without an encoder may be
        passed as numbers.  Returns ``{name: float32 [m, d]}`` for the modalities given; a missing value becomes
        a zero row (which the models' ``add_items`` treat as missing).
        """
        return _encode(raw, self.item_encoders, self.item_features, "item")

    def encode_users(self, raw: Mapping[str, Sequence[Any]]) -> dict[str, np.ndarray]:
        """As :meth:`encode_items`, for user modalities (profile attributes)."""
        return _encode(raw, self.user_encoders, self.user_features, "user")

    def append_items(self, rows: Mapping[str, np.ndarray], m: int) -> None:
        """Grow every item modality by ``m`` rows: ``rows[name]`` where given (all-zero rows count as missing),
        zero rows with ``present=False`` otherwise.  Keeps the side information aligned with a model after
        ``add_items`` so that a later retrain still sees the new items' content."""
        for name, x in list(self.item_features.items()):
            d = np.asarray(x).shape[1]
            new = np.zeros((m, d), np.float32)
            if name in rows:
                r = np.asarray(rows[name], np.float32)
                if r.shape != (m, d):
                    raise DataError(f"item modality {name!r} needs rows of shape ({m}, {d}), got {r.shape}")
                new = r
            present = np.abs(new).sum(axis=1) > 0
            self.item_features[name] = np.vstack([np.asarray(x, np.float32), new])
            old = self.item_present.get(name, np.abs(np.asarray(x)).sum(axis=1) > 0)
            self.item_present[name] = np.concatenate([np.asarray(old, bool), present])

    def take_items(self, rows: np.ndarray) -> SideInfo:
        """A copy whose item rows are ``rows`` of this one (``-1``: a zero row, not present); users unchanged."""
        rows = np.asarray(rows, np.int64)
        ok = rows >= 0
        feats, pres = {}, {}
        for name, x in self.item_features.items():
            x = np.asarray(x, np.float32)
            out = np.zeros((len(rows), x.shape[1]), np.float32)
            out[ok] = x[rows[ok]]
            feats[name] = out
            p = np.asarray(self.item_present.get(name, np.abs(x).sum(axis=1) > 0), bool)
            pres[name] = np.where(ok, p[np.where(ok, rows, 0)], False)
        return SideInfo(
            feats, dict(self.user_features), pres, dict(self.user_present), self.social,
            dict(self.item_encoders), dict(self.user_encoders), dict(self.item_kinds), dict(self.user_kinds),
        )  # fmt: skip


def _encode(
    raw: Mapping[str, Sequence[Any]], encoders: Mapping[str, Any], features: Mapping[str, np.ndarray], what: str
) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    sizes = {len(v) for v in raw.values()}
    if len(sizes) > 1:
        raise DataError(f"every {what} modality needs one value per new {what}; got lengths {sorted(sizes)}")
    for name, values in raw.items():
        if name not in features:
            raise DataError(f"unknown {what} modality {name!r}; the model was fitted with {sorted(features)}")
        d = np.asarray(features[name]).shape[1]
        values = list(values)
        present = [v is not None and not (isinstance(v, str) and not v.strip()) for v in values]
        rows = np.zeros((len(values), d), np.float32)
        idx = [j for j, ok in enumerate(present) if ok]
        if idx:
            enc = encoders.get(name)
            if enc is None:
                try:
                    dense = np.asarray([values[j] for j in idx], dtype=np.float32).reshape(len(idx), -1)
                except (TypeError, ValueError) as exc:
                    raise DataError(
                        f"{what} modality {name!r} was given as dense features; pass {d} numbers per {what}"
                    ) from exc
            else:
                dense = np.asarray(enc.transform([values[j] for j in idx]), dtype=np.float32)
            if dense.shape != (len(idx), d):
                raise DataError(f"{what} modality {name!r} needs {d} values per {what}, got shape {dense.shape}")
            rows[idx] = np.nan_to_num(dense, nan=0.0, posinf=0.0, neginf=0.0)
        out[name] = rows
    return out


def fuse_modalities(
    features: Mapping[str, np.ndarray],
    names: Sequence[str],
    *,
    modality_weights: Mapping[str, float] | None = None,
    impute: str = "zero",
    present: Mapping[str, np.ndarray] | None = None,
    means: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate modalities into ``float32 [n, D]``: impute missing rows, L2-normalise rows, weight.

    For each modality ``m`` (raw rows ``x``, presence from ``present[m]`` or "row is not all zero"): missing rows
    become the modality's raw mean over present rows (``impute="mean"``; with ``means`` given, those stored means,
    as ``add_items`` does) or stay zero (``"zero"``); then every row is divided by its L2 norm and multiplied by
    ``sqrt(w_m)``, so that ``<f(a), f(b)> = sum_m w_m cos_m(a, b)`` and ``w_m`` (``modality_weights``, default 1)
    is the modality's share of a dot product whatever its scale or width.

    Returns ``(matrix, dims int64 [M], raw means float32 [sum d_m])``.
    """
    if impute not in ("mean", "zero"):
        raise ConfigError(f"impute must be 'mean' or 'zero', got {impute!r}")
    parts, dims, mean_parts = [], [], []
    offset = 0
    for name in names:
        if name not in features:
            raise DataError(f"no features {name!r}; available: {sorted(features)}")
        x = np.asarray(features[name], dtype=np.float32)
        if x.ndim != 2:
            raise DataError(f"features {name!r} must be 2-D [n, d], got shape {x.shape}")
        if not np.isfinite(x).all():
            raise DataError(f"features {name!r} hold NaN or infinite values; clean or impute them first")
        d = x.shape[1]
        if present is not None and name in present:
            mask = np.asarray(present[name], dtype=bool)
            if mask.shape != (x.shape[0],):
                raise DataError(f"presence mask of {name!r} must have {x.shape[0]} entries")
        else:
            mask = np.abs(x).sum(axis=1) > 0
        if means is not None:
            mu = np.asarray(means[offset : offset + d], dtype=np.float32)
            if mu.shape != (d,):
                raise DataError(f"features {name!r} must have {d} columns as at fit time, got {x.shape[1]}")
        else:
            mu = x[mask].mean(axis=0).astype(np.float32) if mask.any() else np.zeros(d, np.float32)
        if impute == "mean" and not mask.all():
            x = x.copy()
            x[~mask] = mu
        elif impute == "zero":
            x = np.where(mask[:, None], x, np.float32(0.0))
        w = 1.0 if modality_weights is None else float(modality_weights.get(name, 1.0))
        if not (np.isfinite(w) and w >= 0):
            raise ConfigError(f"modality weight of {name!r} must be a finite number >= 0, got {w!r}")
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        parts.append((x / np.maximum(norms, 1e-12) * np.float32(np.sqrt(w))).astype(np.float32))
        dims.append(d)
        mean_parts.append(mu)
        offset += d
    n = parts[0].shape[0] if parts else 0
    if any(p.shape[0] != n for p in parts):
        raise DataError(f"modalities have different row counts {sorted({p.shape[0] for p in parts})}")
    matrix = np.hstack(parts).astype(np.float32) if parts else np.zeros((0, 0), np.float32)
    means_out = np.concatenate(mean_parts).astype(np.float32) if mean_parts else np.zeros(0, np.float32)
    return matrix, np.asarray(dims, dtype=np.int64), means_out
