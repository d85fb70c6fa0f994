"""Re-ranking of any model's output for calibration, exposure fairness and diversity.

Every reranker takes, per user, a candidate list (e.g. the top 100 of ``model.recommend``) with the model's scores
and returns a new top ``k``::

    items, scores = reranker.rerank(users, candidates, scores, k)

``candidates`` is ``int [U, C]`` (``-1`` pads a short row), ``scores`` the matching ``[U, C]`` model scores
(non-finite = not available); the result is ``int64 [U, k]`` items (``-1`` when fewer than ``k`` are available)
and their *original* model scores (``-inf`` for padding).  With ``lam = 0`` (no cap) every reranker returns the
candidates sorted by score, ties broken by their position in ``candidates``.  Relevance inside the rerankers is the
model score min-max scaled to ``[0, 1]`` over each user's candidates, so one ``lam`` means the same for every model.

Rerankers:

- :class:`Calibrated` -- Steck (2018), *Calibrated recommendations*, RecSys: greedy maximisation of
  ``(1 - lam) * relevance - lam * KL(p(g|history) || q~(g|list))`` over item groups (genres).
- :class:`ExposureCap` -- a hard cap: at most ``floor(max_share * k)`` items of a group per list (greedy by score,
  the constrained re-ranking of Celis, Straszak & Vishnoi 2018 / Zehlike et al. 2017 FA*IR with fixed maxima).
- :class:`FairExposure` -- exposure proportional to relevance across users (Singh & Joachims 2018, *Fairness of
  exposure in rankings*), amortised over the users of one call as in Biega, Gummadi & Weikum (2018), *Equity of
  attention*: each list boosts the groups whose cumulative position-discounted exposure so far is below their share
  of the candidates' relevance.  A greedy heuristic, not the LP of Singh & Joachims.
- :class:`MMR` -- Carbonell & Goldstein (1998) maximal marginal relevance:
  ``(1 - lam) * relevance - lam * max_{j in list} cos(item, j)`` on item vectors (features or embeddings).

:func:`from_spec` builds one (or a chain) from a small dict such as ``{"calibrate": 0.5}``, for serving, the CLI
and experiment configs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from fusionrec._groups import group_distribution, item_group_matrix, kl_divergence, position_exposure
from fusionrec._similarity import normalize_rows
from fusionrec.errors import ConfigError, InvalidValueError
from fusionrec.models._params import Interval, validate_params

__all__ = [
    "MMR",
    "Calibrated",
    "Chain",
    "ExposureCap",
    "FairExposure",
    "Reranker",
    "from_spec",
    "groups_from_labels",
]

LAMBDA = (Interval(float, 0.0, 1.0),)
#: users re-ranked at once (bounds the [users, candidates, groups or candidates] work arrays)
BATCH = 256


@runtime_checkable
class Reranker(Protocol):
    """Anything with ``rerank(users, candidates, scores, k) -> (items, scores)``."""

    def rerank(
        self, users: np.ndarray, candidates: np.ndarray, scores: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]: ...


# ---------------------------------------------------------------------- helpers
def groups_from_labels(labels: Sequence[Any]) -> tuple[np.ndarray, list[str]]:
    """A multi-hot ``[n_items, n_groups]`` matrix and the sorted group names from per-item labels (a string or a
    list of strings each; ``""`` / ``[]`` = none), e.g. a catalogue's ``genres`` column."""
    rows = [[str(x) for x in v] if isinstance(v, list | tuple) else ([str(v)] if str(v) else []) for v in labels]
    names = sorted({x for r in rows for x in r})
    col = {n: j for j, n in enumerate(names)}
    out = np.zeros((len(rows), max(1, len(names))), dtype=np.float64)
    for i, r in enumerate(rows):
        for x in r:
            out[i, col[x]] = 1.0
    return out, names


def _check_inputs(
    users: np.ndarray, candidates: np.ndarray, scores: np.ndarray, k: int, n_items: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cand = np.asarray(candidates)
    sc = np.asarray(scores, dtype=np.float64)
    if cand.ndim == 1:
        cand, sc = cand[None, :], sc.reshape(1, -1)
    if cand.ndim != 2 or sc.shape != cand.shape:
        raise InvalidValueError(
            f"candidates {cand.shape} and scores {sc.shape} must both be [users, candidates] of the same shape"
        )
    if cand.size and cand.dtype.kind not in "iu":
        raise InvalidValueError(f"candidates must be integer item indices (-1 = none), got {cand.dtype}")
    cand = cand.astype(np.int64)
    u = np.asarray(users, dtype=np.int64).reshape(-1)
    if len(u) != len(cand):
        raise InvalidValueError(f"{len(u)} users but {len(cand)} candidate rows; give one row per user")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    if cand.size and cand.min() < -1:
        raise InvalidValueError("candidates must be item indices >= 0 (-1 pads a short row)")
    if n_items is not None and cand.size and cand.max() >= n_items:
        raise InvalidValueError(
            f"candidate item {int(cand.max())} is outside the {n_items} items the reranker knows (groups / vectors)"
        )
    return u, cand, sc


def _relevance(sc: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """Scores min-max scaled to [0, 1] per row over available candidates (a constant row -> all 1)."""
    lo = np.min(np.where(avail, sc, np.inf), axis=1, keepdims=True)
    hi = np.max(np.where(avail, sc, -np.inf), axis=1, keepdims=True)
    span = hi - lo
    safe_span = np.where(np.isfinite(span) & (span > 0), span, 1.0)
    rel = np.where(np.isfinite(span) & (span > 0), (sc - np.where(np.isfinite(lo), lo, 0.0)) / safe_span, 1.0)
    return np.where(avail, rel, 0.0)


def _by_score(rel: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """Candidate positions by relevance, best first (ties: earlier position), unavailable last."""
    key = np.where(avail, rel, -np.inf)
    return np.argsort(-key, axis=1, kind="stable")


def _top_by_score(rel: np.ndarray, avail: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` positions of :func:`_by_score` (``-1`` past the available ones), padded to ``k`` columns."""
    order = _by_score(rel, avail)
    pos = np.where(np.take_along_axis(avail, order, 1), order, -1)[:, :k]
    return np.pad(pos, ((0, 0), (0, k - pos.shape[1])), constant_values=-1)


def _gather(cand: np.ndarray, sc: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = pos >= 0
    p = np.where(ok, pos, 0)
    items = np.where(ok, np.take_along_axis(cand, p, axis=1), -1)
    scores = np.where(ok, np.take_along_axis(sc, p, axis=1), -np.inf)
    return items.astype(np.int64), scores


def _greedy(objective: Any, rel: np.ndarray, avail: np.ndarray, k: int) -> np.ndarray:
    """Greedy selection: ``objective(step, chosen_pos_so_far, taken_mask) -> [B, C]`` gains; returns positions."""
    b, c = rel.shape
    pos = np.full((b, k), -1, dtype=np.int64)
    free = avail.copy()
    rows = np.arange(b)
    for t in range(min(k, c)):
        gain = np.where(free, objective(t, pos[:, :t], ~free & avail), -np.inf)
        best = np.argmax(gain, axis=1)  # first maximum: the earlier position wins a tie
        ok = free[rows, best]
        pos[ok, t] = best[ok]
        free[rows[ok], best[ok]] = False
    return pos


class _Base:
    """Validation, scaling, batching and gathering shared by the rerankers; subclasses fill ``_positions``."""

    _param_constraints: ClassVar[Mapping[str, Any]] = {}

    def _validate(self) -> None:
        validate_params(type(self).__name__, vars(self), self._param_constraints)

    @property
    def _n_items(self) -> int | None:
        return None

    def rerank(
        self, users: np.ndarray, candidates: np.ndarray, scores: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The new top ``k`` of each user's candidates: ``(items int64 [U, k], original scores [U, k])``."""
        self._validate()
        u, cand, sc = _check_inputs(users, candidates, scores, k, self._n_items)
        k = int(k)
        if cand.shape[1] == 0:
            return np.full((len(cand), k), -1, dtype=np.int64), np.full((len(cand), k), -np.inf)
        avail = (cand >= 0) & np.isfinite(sc)
        # a candidate listed twice for one user counts once (its first position)
        if cand.shape[1] > 1:
            order = np.argsort(cand, axis=1, kind="stable")
            s = np.take_along_axis(cand, order, axis=1)
            dup = np.zeros_like(avail)
            dup_sorted = np.concatenate([np.zeros((len(s), 1), bool), (s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)], 1)
            np.put_along_axis(dup, order, dup_sorted, axis=1)
            avail &= ~dup
        rel = _relevance(sc, avail)
        pos = np.full((len(cand), k), -1, dtype=np.int64)
        for s0 in range(0, len(cand), self._batch):
            sl = slice(s0, s0 + self._batch)
            pos[sl] = self._positions(u[sl], cand[sl], rel[sl], avail[sl], k)
        return _gather(cand, sc, pos)

    _batch = BATCH

    def _positions(self, users: np.ndarray, cand: np.ndarray, rel: np.ndarray, avail: np.ndarray, k: int) -> np.ndarray:
        raise NotImplementedError


# ---------------------------------------------------------------------- calibration
class Calibrated(_Base):
    """Calibrated re-ranking (Steck 2018): greedily add the item maximising
    ``(1 - lam) * relevance - lam * KL(p(g|u) || q~(g|list + item))``.

    Parameters
    ----------
    item_groups
        One group per item (int, ``-1`` none) or a ``[n_items, n_groups]`` multi-hot / weight matrix (genres).
    history
        ``[n_users, n_items]`` (sparse) interactions whose row ``users[j]`` is user j's history (e.g.
        ``train.matrix``, or the :class:`~fusionrec.data.Interactions` ``train``); its group distribution is the
        target ``p(g|u)``.
    lam
        Trade-off in ``[0, 1]``: 0 keeps the model's order, 1 only calibrates.
    alpha
        Smoothing of ``q~ = (1 - alpha) q + alpha p`` (Steck uses 0.01).
    """

    _param_constraints: ClassVar[Mapping[str, Any]] = {
        "lam": LAMBDA,
        "alpha": (Interval(float, 0.0, 1.0, closed="neither"),),
    }

    def __init__(self, item_groups: np.ndarray, history: Any, *, lam: float = 0.5, alpha: float = 0.01) -> None:
        self.item_groups = item_groups
        self.history = history
        self.lam = lam
        self.alpha = alpha
        self._validate()
        self._pgi = group_distribution(item_group_matrix(item_groups))
        self._history = getattr(history, "matrix", history)  # Interactions or a matrix
        history = self._history
        n_items = self._pgi.shape[0]
        if getattr(history, "ndim", 2) != 2 or np.shape(history)[1] != n_items:
            raise InvalidValueError(
                f"history must be [users, {n_items} items] like item_groups, got shape {np.shape(history)}"
            )

    @property
    def _n_items(self) -> int | None:
        return int(self._pgi.shape[0])

    def target(self, users: np.ndarray) -> np.ndarray:
        """``p(g|u)``: the group distribution of each user's history ``[U, n_groups]`` (zeros without history)."""
        u = np.asarray(users, dtype=np.int64)
        n_users = np.shape(self._history)[0]
        if u.size and (u.min() < 0 or u.max() >= n_users):
            raise InvalidValueError(f"user index outside the history's {n_users} rows")
        h = self._history[u]
        h = h.toarray() if hasattr(h, "toarray") else np.asarray(h)
        return group_distribution(np.asarray(h, dtype=np.float64) @ self._pgi)

    def _positions(self, users: np.ndarray, cand: np.ndarray, rel: np.ndarray, avail: np.ndarray, k: int) -> np.ndarray:
        lam, alpha = float(self.lam), float(self.alpha)
        if lam == 0.0:
            return _top_by_score(rel, avail, k)
        p = self.target(users)  # [B, G]
        pc = self._pgi[np.where(cand >= 0, cand, 0)]  # [B, C, G]
        qsum = np.zeros_like(p)
        rows = np.arange(len(cand))

        def objective(t: int, chosen: np.ndarray, taken: np.ndarray) -> np.ndarray:
            nonlocal qsum
            if t > 0:
                last = chosen[:, -1]
                qsum = qsum + pc[rows, np.where(last >= 0, last, 0)] * (last >= 0)[:, None]
            q = (qsum[:, None, :] + pc) / (t + 1)
            kl = kl_divergence(p[:, None, :], q, alpha)
            return np.asarray((1.0 - lam) * rel - lam * kl)

        return _greedy(objective, rel, avail, k)


# ---------------------------------------------------------------------- exposure
class ExposureCap(_Base):
    """At most ``floor(max_share * k)`` items of a (capped) group in each list: candidates are taken in score order,
    skipping an item while one of its groups is full.

    Parameters
    ----------
    item_groups
        One group per item (popularity bin, provider; ``-1`` none) or a ``[n_items, n_groups]`` multi-hot matrix
        (an item counts toward every group it belongs to).
    max_share
        One share in ``[0, 1]`` for every group, or ``{group index: share}`` capping only those groups (e.g.
        ``{0: 0.3}``: at most 30% short-head items).
    strict
        When the candidates cannot fill ``k`` places within the caps: ``False`` (default) fills the rest with the
        best skipped items (the caps then bind as far as the candidates allow); ``True`` leaves ``-1``.
    """

    _param_constraints: ClassVar[Mapping[str, Any]] = {
        "max_share": (Interval(float, 0.0, 1.0), dict),
        "strict": (bool,),
    }

    def __init__(
        self, item_groups: np.ndarray, *, max_share: float | Mapping[int, float] = 0.5, strict: bool = False
    ) -> None:
        self.item_groups = item_groups
        self.max_share = max_share
        self.strict = strict
        self._validate()
        self._member = item_group_matrix(item_groups) > 0
        self._shares = self._share_vector(self._member.shape[1])

    def _share_vector(self, n_groups: int) -> np.ndarray:
        if not isinstance(self.max_share, Mapping):
            return np.full(n_groups, float(self.max_share))
        shares = np.full(n_groups, np.inf)
        for g, v in self.max_share.items():
            if isinstance(g, bool) or not isinstance(g, int | np.integer) or not 0 <= int(g) < n_groups:
                raise ConfigError(f"ExposureCap: unknown group {g!r} in max_share; groups are 0..{n_groups - 1}")
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= float(v) <= 1.0:
                raise ConfigError(f"ExposureCap: max_share[{g!r}]={v!r} must be a number in [0, 1]")
            shares[int(g)] = float(v)
        return shares

    @property
    def _n_items(self) -> int | None:
        return int(self._member.shape[0])

    def caps(self, k: int) -> np.ndarray:
        """Items allowed per group in a list of ``k`` (``inf`` = uncapped)."""
        return np.where(np.isfinite(self._shares), np.floor(self._shares * k + 1e-9), np.inf)

    def _positions(self, users: np.ndarray, cand: np.ndarray, rel: np.ndarray, avail: np.ndarray, k: int) -> np.ndarray:
        order = _by_score(rel, avail)
        ok_sorted = np.take_along_axis(avail, order, axis=1)
        member = self._member[np.where(cand >= 0, cand, 0)]  # [B, C, G]
        member_sorted = np.take_along_axis(member, order[:, :, None], axis=1)
        cap = self.caps(k)
        b, c = cand.shape
        counts = np.zeros((b, len(cap)))
        n = np.zeros(b, dtype=np.int64)
        pos = np.full((b, k), -1, dtype=np.int64)
        taken = np.zeros((b, c), dtype=bool)
        rows = np.arange(b)
        for j in range(c):  # one vectorised step per candidate rank
            m = member_sorted[:, j, :]
            fits = ~np.any(m & (counts + 1 > cap), axis=1)
            take = ok_sorted[:, j] & fits & (n < k)
            pos[rows[take], n[take]] = order[take, j]
            counts += m * take[:, None]
            taken[take, j] = True
            n += take
        if not self.strict:
            for j in range(c):  # fill what the caps left empty with the best skipped candidates
                take = ok_sorted[:, j] & ~taken[:, j] & (n < k)
                if not take.any():
                    continue
                pos[rows[take], n[take]] = order[take, j]
                n += take
        return pos


class FairExposure(_Base):
    """Exposure proportional to relevance across users, amortised over the users of one call (in order).

    Each group's target is its share of the (scaled) relevance of all candidates of all users in the call; its
    exposure so far is the position-discounted exposure ``1 / log2(rank + 2)`` of the lists already produced.  A
    user's list is the top ``k`` by ``(1 - lam) * relevance + lam * boost``, where ``boost`` in ``[-1, 1]`` is the
    item's mean group deficit (target share minus exposure share so far): a feedback that fades as the exposure
    catches up with the target.
    Singh & Joachims (2018) state the goal; the amortisation follows Biega et al. (2018).  Stateless between calls.

    Parameters
    ----------
    item_groups
        One group per item or a ``[n_items, n_groups]`` multi-hot matrix (a multi-label item's exposure is split).
    lam
        Trade-off in ``[0, 1]``: 0 keeps the model's order.
    """

    _param_constraints: ClassVar[Mapping[str, Any]] = {"lam": LAMBDA}
    _batch = 1 << 62  # amortised over the whole call

    def __init__(self, item_groups: np.ndarray, *, lam: float = 0.5) -> None:
        self.item_groups = item_groups
        self.lam = lam
        self._validate()
        self._pgi = group_distribution(item_group_matrix(item_groups))

    @property
    def _n_items(self) -> int | None:
        return int(self._pgi.shape[0])

    def _positions(self, users: np.ndarray, cand: np.ndarray, rel: np.ndarray, avail: np.ndarray, k: int) -> np.ndarray:
        lam = float(self.lam)
        if lam == 0.0:
            return _top_by_score(rel, avail, k)
        pc = self._pgi[np.where(cand >= 0, cand, 0)]  # [U, C, G]
        target = np.einsum("uc,ucg->g", rel * avail, pc)
        target = target / target.sum() if target.sum() > 0 else target
        disc = position_exposure(k)
        exposure = np.zeros_like(target)
        pos = np.full((len(cand), k), -1, dtype=np.int64)
        for r in range(len(cand)):
            total = exposure.sum()
            deficit = target - (exposure / total if total > 0 else 0.0)
            boost = pc[r] @ deficit
            key = np.where(avail[r], (1.0 - lam) * rel[r] + lam * boost, -np.inf)
            best = np.argsort(-key, kind="stable")[:k]
            best = best[avail[r, best]]
            pos[r, : len(best)] = best
            exposure += disc[: len(best)] @ pc[r, best]
        return pos


# ---------------------------------------------------------------------- diversity
class MMR(_Base):
    """Maximal marginal relevance (Carbonell & Goldstein 1998): greedily add the item maximising
    ``(1 - lam) * relevance - lam * max_{j in list} cos(item, j)``.

    Parameters
    ----------
    item_vectors
        ``[n_items, d]`` item features or embeddings (cosine similarity; an all-zero row is similar to nothing).
    lam
        Trade-off in ``[0, 1]``: 0 keeps the model's order, 1 only diversifies (after the first item).
    """

    _param_constraints: ClassVar[Mapping[str, Any]] = {"lam": LAMBDA}

    def __init__(self, item_vectors: np.ndarray, *, lam: float = 0.5) -> None:
        self.item_vectors = item_vectors
        self.lam = lam
        self._validate()
        v = np.asarray(item_vectors.toarray() if hasattr(item_vectors, "toarray") else item_vectors, np.float64)
        if v.ndim != 2 or not np.isfinite(v).all():
            raise InvalidValueError(f"item_vectors must be a finite [n_items, d] matrix, got shape {v.shape}")
        self._unit = normalize_rows(v, np.float64)

    @property
    def _n_items(self) -> int | None:
        return int(self._unit.shape[0])

    def _positions(self, users: np.ndarray, cand: np.ndarray, rel: np.ndarray, avail: np.ndarray, k: int) -> np.ndarray:
        lam = float(self.lam)
        if lam == 0.0:
            return _top_by_score(rel, avail, k)
        vec = self._unit[np.where(cand >= 0, cand, 0)]  # [B, C, d]
        sim = np.einsum("bcd,bed->bce", vec, vec)  # [B, C, C]
        maxsim = np.full(rel.shape, -np.inf)
        rows = np.arange(len(cand))

        def objective(t: int, chosen: np.ndarray, taken: np.ndarray) -> np.ndarray:
            nonlocal maxsim
            if t > 0:
                last = chosen[:, -1]
                got = last >= 0
                upd = sim[rows, np.where(got, last, 0), :]
                maxsim = np.where(got[:, None], np.maximum(maxsim, upd), maxsim)
            red = np.where(np.isfinite(maxsim), maxsim, 0.0)
            return np.asarray((1.0 - lam) * rel - lam * red)

        return _greedy(objective, rel, avail, k)


# ---------------------------------------------------------------------- composition
def _lookup(cand: np.ndarray, sc: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``sc[j, position of items[j, t] in cand[j]]`` (``-inf`` for ``-1``), rows matched by user."""
    width = np.int64(max(int(cand.max(initial=0)), int(items.max(initial=0))) + 2)
    rows = np.arange(len(cand), dtype=np.int64)[:, None]
    keys = (rows * width + cand + 1).ravel()
    order = np.argsort(keys, kind="stable")
    want = (rows * width + items + 1).ravel()
    at = np.clip(np.searchsorted(keys[order], want), 0, len(keys) - 1)
    found = (keys[order][at] == want) & (items.ravel() >= 0)
    out = np.where(found, sc.ravel()[order[at]], -np.inf)
    return out.reshape(items.shape)


class Chain:
    """Apply rerankers in turn; each but the last keeps ``depth`` items (default: all candidates).  From the
    second on, a reranker sees the previous one's order as its relevance (rank-based scores), so every step
    re-ranks the list the step before produced; the result carries the original model scores."""

    def __init__(self, rerankers: Sequence[Reranker], *, depth: int | None = None) -> None:
        if not rerankers:
            raise ConfigError("Chain needs at least one reranker")
        self.rerankers = list(rerankers)
        self.depth = depth

    def rerank(
        self, users: np.ndarray, candidates: np.ndarray, scores: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The top ``k`` of each user's ``candidates`` after every reranker in turn: ``(items, model scores)``."""
        u, cand, sc = _check_inputs(users, candidates, scores, k, None)
        cur_cand, cur_sc = cand, sc
        for r in self.rerankers:
            last = r is self.rerankers[-1]
            items, _ = r.rerank(u, cur_cand, cur_sc, k if last else (self.depth or cand.shape[1]))
            # the next step sees the previous order, not the model scores: rank-based scores (best highest)
            cur_cand = items
            cur_sc = np.where(items >= 0, -np.arange(items.shape[1], dtype=np.float64)[None, :], -np.inf)
        return cur_cand, _lookup(cand, sc, cur_cand)


SPEC_KEYS = ("calibrate", "fair_exposure", "diversify", "max_share")


def from_spec(
    spec: Mapping[str, Any],
    *,
    item_groups: np.ndarray | None = None,
    item_vectors: np.ndarray | None = None,
    history: Any = None,
    group_names: Sequence[str] | None = None,
) -> Reranker:
    """A reranker from ``{"calibrate": lam, "max_share": s | {group: s}, "fair_exposure": lam, "diversify": lam}``.

    Keys present are applied as a :class:`Chain` in a fixed order: calibration, exposure, MMR, and the caps last
    (a cap constrains the final ``k`` items, taken in the order the steps before produced); ``max_share`` may name
    groups by ``group_names`` (``{"Drama": 0.3}``).  Raises :class:`ConfigError` for unknown keys, or when
    the data a key needs (groups, history, vectors) is missing.
    """
    unknown = set(spec) - set(SPEC_KEYS)
    if unknown:
        raise ConfigError(f"unknown rerank option(s) {sorted(unknown)}; choose from {list(SPEC_KEYS)}")
    chain: list[Reranker] = []

    def need(what: str, value: Any, key: str) -> Any:
        if value is None:
            raise ConfigError(f"rerank {key!r} needs {what}, which this model / catalogue does not provide")
        return value

    if spec.get("calibrate") is not None:
        groups = need("item groups (e.g. a genres column)", item_groups, "calibrate")
        chain.append(Calibrated(groups, need("user histories", history, "calibrate"), lam=spec["calibrate"]))
    if spec.get("fair_exposure") is not None:
        groups = need("item groups", item_groups, "fair_exposure")
        chain.append(FairExposure(groups, lam=spec["fair_exposure"]))
    if spec.get("diversify") is not None:
        vectors = need("item vectors (features or embeddings)", item_vectors, "diversify")
        chain.append(MMR(vectors, lam=spec["diversify"]))
    if spec.get("max_share") is not None:
        share = spec["max_share"]
        groups = need("item groups (e.g. a genres column)", item_groups, "max_share")
        if isinstance(share, Mapping):
            # groups by name (group_names), or by index: an int or its text (config-file keys are strings)
            index = {str(n): j for j, n in enumerate(group_names or [])}
            bad = [g for g in share if not isinstance(g, int) and str(g) not in index and not str(g).isdigit()]
            if bad:
                raise ConfigError(f"unknown group(s) {bad} in max_share; groups: {list(group_names or [])}")
            share = {
                (g if isinstance(g, int) else index[str(g)] if str(g) in index else int(str(g))): v
                for g, v in share.items()
            }
        chain.append(ExposureCap(groups, max_share=share))
    if not chain:
        raise ConfigError(f"empty rerank spec; give one of {list(SPEC_KEYS)}")
    return chain[0] if len(chain) == 1 else Chain(chain)
