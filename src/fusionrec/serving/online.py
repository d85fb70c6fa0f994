"""Online serving state: fold new events into users without refitting, add users and items, retrain and swap.

Factor form
    Many models score ``s(u, i) = p_u . q_i + b_i + b_u + mu``.  :func:`factor_view` finds such a form from the
    model's learned attributes (``user_factors_`` / ``item_factors_``, ``user_bias_`` / ``item_bias_`` /
    ``global_mean_``) and *checks* it against ``model.score`` on a few users; the augmented vectors
    ``p'_u = [p_u, 1, b_u + mu]``, ``q'_i = [q_i, b_i, 1]`` make every score an inner product (ANN-searchable).

Fold-in (a user's new events, no refit)
    Explicit models: ridge least squares against the fixed item vectors,
    ``[p_u, b_u] = argmin sum_i (r_ui - mu - b_i - p_u.q_i - b_u)^2 + lam ||[p_u, b_u]||^2``.
    Implicit models (Hu, Koren & Volinsky 2008): ``p_u = (Q^T Q + Q^T (C_u - I) Q + lam I)^-1 Q^T C_u 1`` with
    confidence ``c_ui = 1 + alpha r_ui`` on the user's items.  A model method ``fold_in`` / ``recalculate_user``
    (rows -> user vectors, e.g. ALS's exact half-step) is used instead when present.  Models without a factor
    form (MostPopular, ItemKNN ...) only update the user's seen set; new users of such models get popularity
    scores.

New items
    The item is placed at the mean of its ``m`` nearest existing items by content (posted feature vector vs
    the bundle's ``item_features``, or posted text vs the titles by hashed bag-of-words cosine): its vector (or, without vectors, its score) is their average.

The serving state keeps its own factor view and never mutates the bundle's model; the model-level cold-start
contract (:mod:`fusionrec.models.coldstart`: ``add_items`` / ``fold_in_user``) is for library use and for the
retrain that builds the next bundle.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from fusionrec._ranking import topk
from fusionrec.errors import ConfigError, FusionRecError, UnknownIdError

if TYPE_CHECKING:
    from fusionrec.models.base import Recommender
    from fusionrec.serving.bundle import Bundle
    from fusionrec.serving.store import Event, EventStore

__all__ = ["FactorView", "OnlineModel", "ServingEngine", "factor_view", "fold_in_ridge", "retrain_bundle"]

log = logging.getLogger(__name__)

_FACTOR_ATTRS = (("user_factors_", "item_factors_"), ("user_embeddings_", "item_embeddings_"), ("P_", "Q_"))
_REG_PARAMS = ("regularization", "reg", "lambda_", "reg_all", "reg_pu", "reg_user", "l2")
N_NEIGHBOURS = 10


class UnknownUserError(UnknownIdError):
    """The user is neither in the bundle nor added online."""


class UnknownItemError(UnknownIdError):
    """The item is neither in the bundle nor added online."""


# ------------------------------------------------------------------------------------------ factor form
@dataclass
class FactorView:
    """Augmented factors with ``score(u, i) = user_vecs[u] . item_vecs[i]``.

    ``n_factors`` leading coordinates are the latent factors; ``item_bias_col`` (user side fixed at 1) and
    ``user_bias_col`` (item side fixed at 1, user side ``b_u + mu``) are ``-1`` when absent.
    """

    user_vecs: np.ndarray
    item_vecs: np.ndarray
    n_factors: int
    item_bias_col: int = -1
    user_bias_col: int = -1
    mu: float = 0.0


def factor_view(model: Recommender, probe: int = 8) -> FactorView | None:
    """The model's scores as inner products of augmented vectors, or ``None`` when they are not (checked)."""
    n_users = int(model.n_users_)
    factors: tuple[np.ndarray, np.ndarray] | None = None
    user_emb = getattr(model, "user_embeddings", None)
    if callable(user_emb):
        with contextlib.suppress(Exception):
            u, v = user_emb(), model.item_embeddings()
            if u is not None and v is not None:
                factors = (np.asarray(u), np.asarray(v))
    for ua, ia in _FACTOR_ATTRS:
        if factors is None and isinstance(getattr(model, ua, None), np.ndarray):
            factors = (getattr(model, ua), getattr(model, ia, None))  # type: ignore[assignment]
    if factors is not None and (factors[1] is None or factors[0].ndim != 2 or factors[1].ndim != 2):
        factors = None
    U = np.zeros((n_users, 0), np.float32) if factors is None else np.asarray(factors[0], np.float32)
    V = np.zeros((int(model.n_items_), 0), np.float32) if factors is None else np.asarray(factors[1], np.float32)
    if U.shape[0] != n_users or V.shape[0] != model.n_items_ or U.shape[1] != V.shape[1]:
        return None
    bu = getattr(model, "user_bias_", None)
    bi = getattr(model, "item_bias_", None)
    mu = float(getattr(model, "global_mean_", 0.0) or 0.0)
    users = np.arange(min(probe, n_users))
    try:
        target = np.asarray(model.score(users), dtype=np.float64)
    except Exception:  # a model that cannot score its own users is not a factor model
        return None
    scale = max(1.0, float(np.abs(target).max()) if target.size else 1.0)
    variants = [(False, False)]
    if isinstance(bi, np.ndarray) or isinstance(bu, np.ndarray) or mu:
        variants.append((isinstance(bi, np.ndarray), isinstance(bu, np.ndarray) or bool(mu)))
    for use_bi, use_bu in variants:
        if U.shape[1] == 0 and not (use_bi or use_bu):
            continue
        ucols, icols = [U], [V]
        ib_col = ub_col = -1
        if use_bi:
            ib_col = sum(c.shape[1] for c in ucols)
            ucols.append(np.ones((n_users, 1), np.float32))
            icols.append(np.asarray(bi, np.float32).reshape(-1, 1))
        if use_bu:
            ub_col = sum(c.shape[1] for c in ucols)
            b = np.asarray(bu, np.float32).reshape(-1, 1) if isinstance(bu, np.ndarray) else np.zeros((n_users, 1))
            ucols.append((b + mu).astype(np.float32))
            icols.append(np.ones((V.shape[0], 1), np.float32))
        uv = np.ascontiguousarray(np.hstack(ucols), dtype=np.float32)
        iv = np.ascontiguousarray(np.hstack(icols), dtype=np.float32)
        recon = uv[users].astype(np.float64) @ iv.T.astype(np.float64)
        if recon.shape == target.shape and np.allclose(recon, target, atol=1e-3 * scale, rtol=1e-3):
            return FactorView(uv, iv, U.shape[1], ib_col, ub_col, mu)
    return None


def _param(model: Recommender, names: Sequence[str], default: float) -> float:
    params = model.get_params()
    for n in names:
        value = params.get(n)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return default


def fold_in_ridge(
    view: FactorView,
    items: np.ndarray,
    values: np.ndarray,
    *,
    explicit: bool,
    reg: float,
    alpha: float = 1.0,
    gram: np.ndarray | None = None,
) -> np.ndarray:
    """A user's augmented vector from their ``(items, values)`` against fixed item vectors (module docstring)."""
    d = view.n_factors
    out = np.zeros(view.item_vecs.shape[1], np.float32)
    if view.item_bias_col >= 0:
        out[view.item_bias_col] = 1.0
    if view.user_bias_col >= 0:
        out[view.user_bias_col] = view.mu
    if len(items) == 0:
        return out
    Q = view.item_vecs[items].astype(np.float64)
    r = np.asarray(values, np.float64)
    if explicit:
        free = list(range(d)) + ([view.user_bias_col] if view.user_bias_col >= 0 else [])
        if not free:
            return out
        y = r - view.mu - (Q[:, view.item_bias_col] if view.item_bias_col >= 0 else 0.0)
        X = Q[:, free]
        w = np.linalg.solve(X.T @ X + reg * np.eye(len(free)), X.T @ y)
        out[free] = w
        if view.user_bias_col >= 0:
            out[view.user_bias_col] += view.mu
        return out
    if d == 0:
        return out
    X = Q[:, :d]
    c = 1.0 + alpha * r
    G = gram if gram is not None else view.item_vecs[:, :d].astype(np.float64).T @ view.item_vecs[:, :d]
    A = G + (X.T * (c - 1.0)) @ X + reg * np.eye(d)
    out[:d] = np.linalg.solve(A, X.T @ c)
    return out


# ------------------------------------------------------------------------------------------ content fallback
def _hash_text(texts: Sequence[str], n_features: int = 2**16) -> sp.csr_matrix:
    from sklearn.feature_extraction.text import HashingVectorizer

    vec = HashingVectorizer(n_features=n_features, ngram_range=(1, 2), alternate_sign=False, norm="l2")
    return vec.transform([t or "" for t in texts]).tocsr()


def _nearest(sims: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    idx, val = topk(sims[None, :], m)
    keep = np.isfinite(val[0]) & (val[0] > 0)
    return idx[0][keep], val[0][keep]


# ------------------------------------------------------------------------------------------ online model
class OnlineModel:
    """A bundle plus everything learned since: new users, new items, folded-in events, profiles.

    Thread-safe: mutations hold ``lock``; readers take short consistent snapshots under it.
    """

    def __init__(self, bundle: Bundle, *, index: str = "auto", ann_threshold: int = 50_000) -> None:
        self.bundle = bundle
        self.model = bundle.model
        self.lock = threading.RLock()
        self.index_kind = index
        self.ann_threshold = ann_threshold
        self.explicit = bool(getattr(self.model, "predicts_ratings", False))
        self.n_base_users = len(bundle.user_ids)
        self.n_base_items = len(bundle.item_ids)
        self.user_raw: list[Any] = bundle.user_ids.ids.tolist()
        self.item_raw: list[Any] = bundle.item_ids.ids.tolist()
        self._int_users = bundle.user_ids.ids.dtype.kind in "iu"
        self._int_items = bundle.item_ids.ids.dtype.kind in "iu"
        self.user_lookup = {str(x): i for i, x in enumerate(self.user_raw)}
        self.item_lookup = {str(x): i for i, x in enumerate(self.item_raw)}
        self.seen: sp.csr_matrix = sp.csr_matrix(self.model.seen_)
        self.seen_extra: dict[int, dict[int, float]] = {}
        self.user_attrs: dict[int, dict[str, Any]] = {}
        self.item_meta: dict[str, list[Any]] = {k: list(v) for k, v in bundle.item_meta.items()}
        self.popularity = np.bincount(self.seen.indices, minlength=self.n_base_items).astype(np.float64)
        self.proxies: list[tuple[np.ndarray, np.ndarray]] = []  # new items, non-factor models
        self.applied_seq = int(bundle.store_seq)
        self.n_events = 0
        self.view = factor_view(self.model)
        self._gram: np.ndarray | None = None
        self._item_norm: np.ndarray | None = None
        self._seen_csc: sp.csc_matrix | None = None
        self._text_index: sp.csr_matrix | None = None
        self.reg = _param(self.model, _REG_PARAMS, 0.1)
        self.alpha = _param(self.model, ("alpha",), 1.0)
        self.index = None
        if self.view is not None:
            from fusionrec.serving.index import build_index

            self.index = build_index(self.view.item_vecs, index, ann_threshold=ann_threshold)  # type: ignore[arg-type]

    # ---------------------------------------------------------------- ids
    @property
    def n_users(self) -> int:
        return len(self.user_raw)

    @property
    def n_items(self) -> int:
        return len(self.item_raw)

    def _coerce(self, raw: Any, as_int: bool) -> Any:
        if as_int:
            with contextlib.suppress(TypeError, ValueError):
                return int(raw)
        return str(raw)

    def user_index(self, raw: Any) -> int | None:
        return self.user_lookup.get(str(raw))

    def item_index(self, raw: Any) -> int | None:
        return self.item_lookup.get(str(raw))

    def require_user(self, raw: Any) -> int:
        u = self.user_index(raw)
        if u is None:
            raise UnknownUserError(
                f"unknown user {raw!r}; post an event for it (POST /events) or create it (POST /users) first"
            )
        return u

    def require_items(self, raws: Sequence[Any]) -> np.ndarray:
        idx = [self.item_lookup.get(str(r), -1) for r in raws]
        missing = [r for r, i in zip(raws, idx) if i < 0]
        if missing:
            raise UnknownItemError(
                f"{len(missing)} unknown item(s), e.g. {missing[:5]}; add new items with POST /items first"
            )
        return np.asarray(idx, dtype=np.int64)

    def item_ids_out(self, idx: np.ndarray) -> list[Any]:
        return [self.item_raw[i] for i in np.asarray(idx).tolist()]

    # ---------------------------------------------------------------- mutation
    def _new_user(self, raw: Any) -> int:
        u = len(self.user_raw)
        self.user_raw.append(self._coerce(raw, self._int_users))
        self.user_lookup[str(raw)] = u
        if self.view is not None:
            vec = fold_in_ridge(self.view, np.empty(0, np.int64), np.empty(0), explicit=True, reg=self.reg)
            self.view.user_vecs = _append_row(self.view.user_vecs, vec)
        return u

    def add_user(self, raw: Any, attributes: Mapping[str, Any] | None = None) -> int:
        """Create (or update the attributes of) a user; returns its index."""
        with self.lock:
            u = self.user_index(raw)
            if u is None:
                u = self._new_user(raw)
            if attributes:
                self.user_attrs[u] = dict(attributes)
            return u

    def add_item(
        self,
        raw: Any,
        meta: Mapping[str, Any] | None = None,
        features: Sequence[float] | None = None,
        text: str | None = None,
    ) -> int:
        """Make a new item recommendable at once (see the module docstring); returns its index."""
        with self.lock:
            known = self.item_index(raw)
            if known is not None:
                self._set_meta(known, meta or {})
                return known
            nbrs, weights = self._neighbours(features, text or _meta_text(meta))
            i = len(self.item_raw)
            self.item_raw.append(self._coerce(raw, self._int_items))
            self.item_lookup[str(raw)] = i
            for col in self.item_meta.values():
                col.append([] if col and isinstance(col[0], list) else "")
            self._set_meta(i, meta or {})
            self.popularity = np.append(self.popularity, 0.0)
            if self.view is not None:
                vec = self._average(self.view.item_vecs, nbrs, weights)
                self.view.item_vecs = _append_row(self.view.item_vecs, vec)
                self._gram = self._item_norm = None
                if self.index is not None:
                    self.index.add(vec[None, :])
            else:
                self.proxies.append((nbrs, weights))
            self.seen = sp.csr_matrix(
                (self.seen.data, self.seen.indices, self.seen.indptr), shape=(self.seen.shape[0], i + 1)
            )
            return i

    def _set_meta(self, i: int, meta: Mapping[str, Any]) -> None:
        for key, value in meta.items():
            if key not in self.item_meta:
                multi = isinstance(value, list)
                self.item_meta[key] = [[] if multi else "" for _ in range(len(self.item_raw))]
            col = self.item_meta[key]
            col[i] = list(map(str, value)) if isinstance(value, list | tuple) else ("" if value is None else str(value))

    @staticmethod
    def _average(vecs: np.ndarray, nbrs: np.ndarray, weights: np.ndarray) -> np.ndarray:
        if len(nbrs) == 0:
            return vecs.mean(axis=0).astype(np.float32)
        w = np.asarray(weights, np.float64)
        return (w @ vecs[nbrs] / w.sum()).astype(np.float32)

    def _neighbours(self, features: Sequence[float] | None, text: str) -> tuple[np.ndarray, np.ndarray]:
        feats = self.bundle.item_features
        if features is not None and feats is not None:
            f = np.asarray(features, np.float32)
            if f.shape != (feats.shape[1],):
                raise ConfigError(
                    f"features must have {feats.shape[1]} values (the bundle's item feature dimension), got {f.shape}"
                )
            norm = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
            sims = norm @ (f / max(float(np.linalg.norm(f)), 1e-12))
            return _nearest(sims, N_NEIGHBOURS)
        titles = self.bundle.item_meta.get("title")
        if text and titles:
            if self._text_index is None:
                genres = self.bundle.item_meta.get("genres")
                docs = [f"{t} {' '.join(genres[j]) if genres else ''}" for j, t in enumerate(titles)]
                self._text_index = _hash_text(docs)
            sims = (self._text_index @ _hash_text([text]).T).toarray().ravel()
            return _nearest(sims, N_NEIGHBOURS)
        return np.empty(0, np.int64), np.empty(0)

    def apply_events(self, events: Sequence[Event]) -> None:
        """Fold events (already stored) into the users they touch; unknown items are skipped (logged)."""
        with self.lock:
            touched: set[int] = set()
            for e in events:
                i = self.item_index(e.item)
                if i is None:
                    log.warning("event for unknown item %r skipped", e.item)
                    continue
                u = self.user_index(e.user)
                if u is None:
                    u = self._new_user(e.user)
                self.seen_extra.setdefault(u, {})[i] = float(e.value)
                self.popularity[i] += 1.0
                touched.add(u)
                self.applied_seq = max(self.applied_seq, int(e.seq))
                self.n_events += 1
            for u in touched:
                self._refold(u)

    def _refold(self, u: int) -> None:
        if self.view is None:
            return
        items, values = self.history_arrays(u)
        vec = self._model_fold_in(items, values)
        if vec is None:
            if not self.explicit and self._gram is None:
                F = self.view.item_vecs[:, : self.view.n_factors].astype(np.float64)
                self._gram = F.T @ F
            vec = fold_in_ridge(
                self.view, items, values, explicit=self.explicit, reg=self.reg, alpha=self.alpha, gram=self._gram
            )
            if not self.explicit and u < self.n_base_users:
                # keep the trained biases of a known user; implicit fold-in refits the factors only
                base = self.view.user_vecs[u].copy()
                base[: self.view.n_factors] = vec[: self.view.n_factors]
                vec = base
        self.view.user_vecs[u] = vec

    def _model_fold_in(self, items: np.ndarray, values: np.ndarray) -> np.ndarray | None:
        assert self.view is not None
        for name in ("fold_in", "recalculate_user"):  # vector-returning (ALS.fold_in, implicit's name)
            fn = getattr(self.model, name, None)
            if not callable(fn) or (items >= self.n_base_items).any():
                continue
            row = sp.csr_matrix((values.astype(np.float32), items, [0, len(items)]), shape=(1, self.n_base_items))
            try:
                out = np.asarray(fn(row), np.float32).reshape(-1)
            except Exception as exc:
                log.info("model %s failed (%s); using the generic ridge fold-in", name, exc)
                continue
            if out.shape == (self.view.n_factors,):
                vec = fold_in_ridge(self.view, np.empty(0, np.int64), np.empty(0), explicit=True, reg=self.reg)
                vec[: self.view.n_factors] = out
                return vec
        return None

    # ---------------------------------------------------------------- reading
    def history_arrays(self, u: int) -> tuple[np.ndarray, np.ndarray]:
        """Item indices and values of user ``u`` (training row then online events, later values win)."""
        merged: dict[int, float] = {}
        if u < self.seen.shape[0]:
            lo, hi = self.seen.indptr[u], self.seen.indptr[u + 1]
            merged.update(zip(self.seen.indices[lo:hi].tolist(), self.seen.data[lo:hi].tolist()))
        merged.update(self.seen_extra.get(u, {}))
        items = np.fromiter(merged.keys(), dtype=np.int64, count=len(merged))
        return items, np.fromiter(merged.values(), dtype=np.float64, count=len(merged))

    def has_vector(self, u: int) -> bool:
        return self.view is not None and (u < self.n_base_users or u in self.seen_extra)

    def filter_items(self, filters: Mapping[str, str]) -> np.ndarray:
        """Items whose metadata column equals (or, for multi-label columns, contains) each filter value."""
        mask = np.ones(self.n_items, dtype=bool)
        for key, value in filters.items():
            col = self.item_meta.get(key)
            if col is None:
                raise ConfigError(f"unknown filter {key!r}; item attributes: {sorted(self.item_meta)}")
            want = str(value).lower()
            mask &= np.fromiter(
                (
                    any(want == str(x).lower() for x in v) if isinstance(v, list) else str(v).lower() == want
                    for v in col
                ),
                dtype=bool,
                count=len(col),
            )
        return np.flatnonzero(mask)

    def scores(self, u: int, items: np.ndarray | None = None) -> np.ndarray:
        """Scores of ``items`` (all when None) for user ``u`` under the current state."""
        if self.has_vector(u):
            assert self.view is not None
            vecs = self.view.item_vecs if items is None else self.view.item_vecs[items]
            return (vecs @ self.view.user_vecs[u]).astype(np.float32)
        if u < self.n_base_users:
            base = np.asarray(self.model.score(np.array([u])), np.float32)[0]
            full = self._extend_scores(base)
        else:
            full = self._profile_scores(u)
        return full if items is None else full[items]

    def _extend_scores(self, base: np.ndarray) -> np.ndarray:
        if not self.proxies:
            return base
        extra = np.array(
            [float(base[n] @ w / w.sum()) if len(n) else float(base.mean()) for n, w in self.proxies], np.float32
        )
        return np.concatenate([base, extra])

    def _profile_scores(self, u: int) -> np.ndarray:
        """Popularity, with items matching the user's profile attributes ranked first."""
        pop = self.popularity.astype(np.float32)
        scores = pop / max(1.0, float(pop.max()))
        for key, wanted in self.user_attrs.get(u, {}).items():
            col = self.item_meta.get(key)
            if col is None:
                continue
            wanted_set = {str(w).lower() for w in (wanted if isinstance(wanted, list | tuple) else [wanted])}
            match = np.fromiter(
                (
                    bool(wanted_set & {str(x).lower() for x in v})
                    if isinstance(v, list)
                    else str(v).lower() in wanted_set
                    for v in col
                ),
                dtype=bool,
                count=len(col),
            )
            scores = scores + match.astype(np.float32)
        return scores

    def recommend(
        self,
        user: Any,
        k: int,
        *,
        exclude_seen: bool = True,
        candidates: Sequence[Any] | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices and scores for a raw user id (see :meth:`scores`)."""
        with self.lock:
            u = self.require_user(user)
            cand = None if candidates is None else np.unique(self.require_items(candidates))
            if filters:
                f = self.filter_items(filters)
                cand = f if cand is None else np.intersect1d(cand, f)
            excluded = self.history_arrays(u)[0] if exclude_seen else np.empty(0, np.int64)
            if cand is None and self.has_vector(u) and self.index is not None:
                return self._search(u, k, excluded)
            if cand is not None and len(cand) == 0:
                return np.empty(0, np.int64), np.empty(0, np.float32)
            s = self.scores(u, cand)
            if len(excluded):
                if cand is None:
                    s[excluded] = -np.inf
                else:
                    s[np.isin(cand, excluded)] = -np.inf
        idx, val = topk(s, k)
        idx, val = idx[0], val[0]
        keep = np.isfinite(val)
        idx, val = idx[keep], val[keep]
        return (idx if cand is None else cand[idx]), val

    def _search(self, u: int, k: int, excluded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.view is not None and self.index is not None
        want = min(self.n_items, k + len(excluded))
        ids, vals = self.index.search(self.view.user_vecs[u][None, :], want)
        ids, vals = ids[0], vals[0]
        keep = (ids >= 0) & np.isfinite(vals) & ~np.isin(ids, excluded)
        ids, vals = ids[keep][:k], vals[keep][:k]
        if len(ids) < min(k, self.n_items - len(excluded)) and self.index.kind != "exact":
            s = self.scores(u)
            s[excluded] = -np.inf
            i, v = topk(s, k)
            keep = np.isfinite(v[0])
            return i[0][keep], v[0][keep]
        return ids, vals

    def similar(self, item: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Most similar items by cosine of item factors, else of co-occurrence in the interaction data."""
        with self.lock:
            i = int(self.require_items([item])[0])
            sims = self.item_similarity(i)
        sims[i] = -np.inf
        idx, val = topk(sims, k)
        keep = np.isfinite(val[0])
        return idx[0][keep], val[0][keep]

    def item_similarity(self, i: int, others: np.ndarray | None = None) -> np.ndarray:
        """Cosine similarity of item ``i`` to ``others`` (all items when None)."""
        if self.view is not None and self.view.n_factors > 0:
            if self._item_norm is None or len(self._item_norm) != self.n_items:
                F = self.view.item_vecs[:, : self.view.n_factors]
                self._item_norm = F / np.maximum(np.linalg.norm(F, axis=1, keepdims=True), 1e-12)
            norm = self._item_norm
            rows = norm if others is None else norm[others]
            return (rows @ norm[i]).astype(np.float32)
        emb = self.model.item_embeddings()
        if emb is not None and i < self.n_base_items:
            norm = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
            full = np.full(self.n_items, -np.inf, np.float32)
            full[: self.n_base_items] = norm @ norm[i]
            return full if others is None else full[others]
        if self._seen_csc is None:
            binary = self.seen[:, : self.n_base_items].copy()
            binary.data = np.ones_like(binary.data)
            self._seen_csc = binary.tocsc()
        csc = self._seen_csc
        full = np.zeros(self.n_items, np.float32)
        if i < self.n_base_items:
            col = csc[:, i]
            co = np.asarray((csc.T @ col).todense()).ravel()
            counts = np.asarray(csc.sum(axis=0)).ravel()
            full[: self.n_base_items] = co / np.maximum(np.sqrt(counts * max(1.0, float(counts[i]))), 1e-12)
        else:
            n, w = self.proxies[i - self.n_base_items]
            full[n] = w
        return full if others is None else full[others]

    def explain(self, user: Any, item: Any, n: int = 5) -> dict[str, Any]:
        """Why ``item`` for ``user``: score, the history items most similar to it, top contributing factors."""
        with self.lock:
            u = self.require_user(user)
            i = int(self.require_items([item])[0])
            hist, values = self.history_arrays(u)
            score = float(self.scores(u, np.array([i]))[0])
            out: dict[str, Any] = {"score": score, "similar_history": [], "factors": []}
            if len(hist):
                sims = self.item_similarity(i, hist)
                order = np.argsort(-sims, kind="stable")[:n]
                out["similar_history"] = [
                    {"item": self.item_raw[int(hist[j])], "similarity": float(sims[j]), "value": float(values[j])}
                    for j in order
                    if np.isfinite(sims[j])
                ]
            if self.has_vector(u):
                assert self.view is not None
                contrib = self.view.user_vecs[u] * self.view.item_vecs[i]
                d = self.view.n_factors
                order = np.argsort(-np.abs(contrib[:d]), kind="stable")[:n]
                out["factors"] = [{"factor": int(f), "contribution": float(contrib[f])} for f in order]
                if self.view.item_bias_col >= 0:
                    out["item_bias"] = float(contrib[self.view.item_bias_col])
                if self.view.user_bias_col >= 0:
                    out["user_bias_plus_mean"] = float(contrib[self.view.user_bias_col])
            return out

    def train_interactions(self) -> Any:
        """The bundle's training data (the model's seen matrix over its id maps)."""
        from fusionrec.data.interactions import Interactions

        m = sp.csr_matrix(self.model.seen_)
        return Interactions(m, self.bundle.user_ids, self.bundle.item_ids, None, self.explicit)


def _append_row(arr: np.ndarray, row: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.vstack([arr, np.asarray(row, arr.dtype)[None, :]]))


def _meta_text(meta: Mapping[str, Any] | None) -> str:
    if not meta:
        return ""
    parts: list[str] = []
    for v in meta.values():
        parts.extend(map(str, v) if isinstance(v, list | tuple) else [str(v)])
    return " ".join(parts)


# ------------------------------------------------------------------------------------------ replay, retrain
def replay(state: OnlineModel, store: EventStore) -> None:
    """Bring ``state`` up to date with the store: added users and items, then events after its position."""
    with state.lock:
        for it in store.items():
            if state.item_index(it.item) is None:
                meta = dict(it.meta)
                text = meta.pop("_text", None)
                state.add_item(it.item, meta, it.features, text)
        for us in store.users():
            state.add_user(us.user, us.attributes)
        while True:
            batch = store.events_since(state.applied_seq, limit=50_000)
            if not batch:
                break
            state.apply_events(batch)


def retrain_bundle(
    state: OnlineModel, store: EventStore, path: str | Path, params: Mapping[str, Any] | None = None
) -> Path:
    """Refit the model on the bundle's training data plus every stored event; write a new bundle to ``path``."""
    from fusionrec.data.interactions import DataWarning, Interactions
    from fusionrec.serving.bundle import save_bundle

    upto = store.last_seq()
    with state.lock:
        base = state.train_interactions()
        meta = {k: list(v) for k, v in state.item_meta.items()}
        item_raw = list(state.item_raw)
    events = [e for e in store.events_since(state.bundle.store_seq) if e.seq <= upto]
    known_items = {str(x): i for i, x in enumerate(item_raw)}
    events = [e for e in events if e.item in known_items]
    frame = base.to_frame()
    users = np.concatenate([frame["user"].to_numpy().astype(object), np.array([e.user for e in events], dtype=object)])
    items = np.concatenate([frame["item"].to_numpy().astype(object), np.array([e.item for e in events], dtype=object)])
    values = np.concatenate([frame["rating"].to_numpy(np.float64), np.array([e.value for e in events], np.float64)])
    user_ids = base.user_ids.extend(np.array([e.user for e in events], dtype=object)) if events else base.user_ids
    new_items = [x for x in item_raw[len(base.item_ids) :] if any(e.item == str(x) for e in events)]
    item_ids = base.item_ids.extend(np.array(new_items, dtype=object)) if new_items else base.item_ids
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        train = Interactions.from_arrays(
            users,
            items,
            values,
            user_ids=user_ids,
            item_ids=item_ids,
            explicit=base.explicit,
            duplicates="last" if base.explicit else "sum",
        )
    model = state.model.clone(**dict(params or {})).fit(train)
    rows = [known_items[str(x)] for x in item_ids.ids.tolist()]
    new_meta = {k: [col[r] for r in rows] for k, col in meta.items()}
    feats = state.bundle.item_features
    if feats is not None and len(item_ids) != len(feats):
        feats = None
    return save_bundle(path, model, train, new_meta, store_seq=upto, item_features=feats, extra=state.bundle.extra)


# ------------------------------------------------------------------------------------------ engine
class ServingEngine:
    """The live service: the current :class:`OnlineModel` (swapped atomically), the store, background jobs."""

    def __init__(
        self,
        bundle_path: str | Path,
        store: EventStore,
        *,
        index: str = "auto",
        ann_threshold: int = 50_000,
        retrain_params: Mapping[str, Any] | None = None,
    ) -> None:
        from fusionrec.serving.bundle import load_bundle

        self.bundle_path = Path(bundle_path)
        self.store = store
        self.index = index
        self.ann_threshold = ann_threshold
        self.retrain_params = dict(retrain_params or {})
        self.write_lock = threading.RLock()
        state = OnlineModel(load_bundle(self.bundle_path), index=index, ann_threshold=ann_threshold)
        replay(state, store)
        self.state = state
        self.retrain_status: dict[str, Any] = {"state": "idle", "last_error": None, "last_finished": None, "runs": 0}
        self._retrain_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # writes: store first (durable), then fold in
    def post_events(self, events: Sequence[Event]) -> list[int]:
        from fusionrec.serving.store import Event as Ev

        with self.write_lock:
            state = self.state
            state.require_items([e.item for e in events])
            seqs = self.store.append(events)
            state.apply_events([Ev(e.user, e.item, e.value, e.timestamp, s) for e, s in zip(events, seqs)])
            return seqs

    def post_item(self, raw: Any, meta: Mapping[str, Any], features: Sequence[float] | None, text: str | None) -> int:
        with self.write_lock:
            state = self.state
            feats = state.bundle.item_features
            if features is not None and feats is not None and len(features) != feats.shape[1]:
                raise ConfigError(f"features must have {feats.shape[1]} values, got {len(features)}")
            stored = dict(meta)
            if text:
                stored["_text"] = text
            self.store.add_items([(str(raw), stored, None if features is None else list(features))])
            return state.add_item(raw, meta, features, text)

    def post_user(self, raw: Any, attributes: Mapping[str, Any]) -> int:
        with self.write_lock:
            self.store.add_users([(str(raw), dict(attributes))])
            return self.state.add_user(raw, attributes)

    def sync(self) -> None:
        """Fold in what other processes wrote to the store."""
        with self.write_lock:
            replay(self.state, self.store)

    # retrain
    def retrain(self, wait: bool = False) -> bool:
        """Start a background retrain (False when one is running); ``wait`` blocks until it finishes."""
        with self.write_lock:
            if self._retrain_thread is not None and self._retrain_thread.is_alive():
                return False
            self.retrain_status["state"] = "running"
            t = threading.Thread(target=self._retrain, name="fusionrec-retrain", daemon=True)
            self._retrain_thread = t
            t.start()
        if wait:
            t.join()
        return True

    def _retrain(self) -> None:
        from fusionrec.serving.bundle import load_bundle

        try:
            path = retrain_bundle(self.state, self.store, self.bundle_path, self.retrain_params)
            fresh = OnlineModel(load_bundle(path), index=self.index, ann_threshold=self.ann_threshold)
            replay(fresh, self.store)  # most of the catch-up outside the write lock
            with self.write_lock:
                replay(fresh, self.store)
                self.state = fresh  # atomic swap: readers hold the old state until they finish
            self.retrain_status.update(state="idle", last_error=None)
        except (FusionRecError, ValueError, OSError, np.linalg.LinAlgError) as exc:
            log.exception("retrain failed")
            self.retrain_status.update(state="failed", last_error=str(exc))
        finally:
            self.retrain_status["runs"] += 1
            self.retrain_status["last_finished"] = time.time()

    def start_background(self, retrain_interval_s: float = 0.0, sync_interval_s: float = 0.0) -> None:
        """Periodic sync with the store and scheduled retrains (daemon threads, stopped by :meth:`close`)."""
        if sync_interval_s > 0:
            self._threads.append(_every(sync_interval_s, self.sync, self._stop, "fusionrec-sync"))
        if retrain_interval_s > 0:
            self._threads.append(_every(retrain_interval_s, self.retrain, self._stop, "fusionrec-retrain-schedule"))

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        if self._retrain_thread is not None:
            self._retrain_thread.join(timeout=60)
        self.store.close()


def _every(interval: float, fn: Any, stop: threading.Event, name: str) -> threading.Thread:
    def loop() -> None:
        while not stop.wait(interval):
            try:
                fn()
            except Exception:
                log.exception("%s failed", name)

    t = threading.Thread(target=loop, name=name, daemon=True)
    t.start()
    return t
