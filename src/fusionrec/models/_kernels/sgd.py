"""Numba kernels of the rating factorisation models: SVD, SVD++, TimeSVD++ (SGD) and NMF (multiplicative).

Notation: ``mu`` global mean, ``b_u`` / ``b_i`` biases, ``p_u`` / ``q_i`` user / item factors, ``y_j``
implicit item factors, ``N(u)`` the items user ``u`` rated in training, ``s_u = |N(u)|^-1/2``.

Per-sample objectives (the SGD steps below follow their gradient exactly, every gradient taken at the
parameters before the step, as in Surprise):

* SVD:  ``l = 1/2 e^2 + 1/2 (reg_bu b_u^2 + reg_bi b_i^2 + reg_pu |p_u|^2 + reg_qi |q_i|^2)`` with
  ``e = r - mu - b_u - b_i - q_i . p_u``.
* SVD++: as SVD with ``r_hat = mu + b_u + b_i + q_i . (p_u + z_u)``, ``z_u = s_u sum_{j in N(u)} y_j``,
  plus ``1/2 reg_yj sum_{j in N(u)} |y_j|^2``.
* TimeSVD++: as SVD++ with the biases ``b_u + alpha_u dev_u(t) + b_{u,day}`` and ``b_i + b_{i,bin}``, each
  extra parameter with its own L2 term.
* Two-sided SVD++: ``q_i`` is replaced by ``q_i + w_i``, ``w_i = |N(i)|^-1/2 sum_{v in N(i)} x_v`` (the users
  who rated ``i``); passes grouped by user update ``y`` (``w`` held fixed), passes grouped by item run
  the same kernel on the transposed problem and update ``x`` (``z`` held fixed).

:func:`sample_loss` / :func:`sample_grad` are the plain numpy forms of these (tests check the kernels
against them by finite differences).

SVD++ in O(|R| f) per epoch
---------------------------
A literal SVD++ step touches every ``y_j, j in N(u)`` (O(|N(u)| f) per rating, which is why Surprise's
SVDpp is slow).  The ``y`` step is the same for all ``j``: ``y_j <- (1 - lr reg) y_j + lr e s_u q_i``.
So while the ratings of one user are processed consecutively, every ``y_j`` stays of the form
``c y_j^0 + d`` with a scalar ``c`` and a vector ``d`` shared by all ``j``; then
``z_u = c z_u^0 + |N(u)| s_u d``.  The kernels keep ``(c, d)``, compute ``z_u`` once per user, and write
``y_j <- c y_j^0 + d`` once when the user's block ends.  This is *exactly* the per-rating SGD of
Surprise's SVDpp (same order, same result up to rounding), only ``|N(u)|`` times cheaper per rating.
Ratings must therefore be given grouped by user (``order`` lists entries user block by user block).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "implicit_epoch",
    "nmf_epoch",
    "sample_grad",
    "sample_loss",
    "svd_epoch",
    "svdpp_epoch",
    "user_implicit",
]


# ---------------------------------------------------------------------------------------------- reference
def sample_loss(theta: dict[str, np.ndarray], r: float, mu: float, reg: dict[str, float]) -> float:
    """Per-sample objective of SVD / SVD++ / TimeSVD++ (plain numpy; the kernels follow its gradient).

    ``theta`` holds ``bu``, ``bi``, ``pu``, ``qi`` (scalars as 0-d arrays, vectors ``[f]``) and optionally
    ``Y`` (``[|N(u)|, f]``, the implicit factors of the user's items), ``alpha`` with ``dev``, ``but``
    and ``bibin``, and ``w`` (the item-side implicit sum of two-sided SVD++, a constant here).  ``reg`` holds the matching L2 weights (``reg_bu`` ...).
    """
    bu = theta["bu"] + theta.get("alpha", 0.0) * theta.get("dev", 0.0) + theta.get("but", 0.0)
    bi = theta["bi"] + theta.get("bibin", 0.0)
    user = theta["pu"].copy()
    if "Y" in theta:
        user = user + theta["Y"].sum(0) / np.sqrt(len(theta["Y"]))
    err = r - (mu + bu + bi + float((theta["qi"] + theta.get("w", 0.0)) @ user))
    loss = 0.5 * err**2
    loss += 0.5 * reg["reg_bu"] * float(theta["bu"]) ** 2 + 0.5 * reg["reg_bi"] * float(theta["bi"]) ** 2
    loss += 0.5 * reg["reg_pu"] * float(theta["pu"] @ theta["pu"]) + 0.5 * reg["reg_qi"] * float(
        theta["qi"] @ theta["qi"]
    )
    if "Y" in theta:
        loss += 0.5 * reg["reg_yj"] * float((theta["Y"] ** 2).sum())
    for name in ("alpha", "but", "bibin"):
        if name in theta:
            loss += 0.5 * reg[f"reg_{name}"] * float(theta[name]) ** 2
    return float(loss)


def sample_grad(theta: dict[str, np.ndarray], r: float, mu: float, reg: dict[str, float]) -> dict[str, np.ndarray]:
    """Analytic gradient of :func:`sample_loss` with respect to every entry of ``theta`` but ``dev`` / ``w``."""
    s = 1.0 / np.sqrt(len(theta["Y"])) if "Y" in theta else 0.0
    z = theta["Y"].sum(0) * s if "Y" in theta else 0.0
    bu = theta["bu"] + theta.get("alpha", 0.0) * theta.get("dev", 0.0) + theta.get("but", 0.0)
    bi = theta["bi"] + theta.get("bibin", 0.0)
    q = theta["qi"] + theta.get("w", 0.0)
    err = float(r - (mu + bu + bi + q @ (theta["pu"] + z)))
    g = {
        "bu": np.asarray(-err + reg["reg_bu"] * theta["bu"]),
        "bi": np.asarray(-err + reg["reg_bi"] * theta["bi"]),
        "pu": -err * q + reg["reg_pu"] * theta["pu"],
        "qi": -err * (theta["pu"] + z) + reg["reg_qi"] * theta["qi"],
    }
    if "Y" in theta:
        g["Y"] = -err * s * np.broadcast_to(q, theta["Y"].shape) + reg["reg_yj"] * theta["Y"]
    if "alpha" in theta:
        g["alpha"] = np.asarray(-err * theta["dev"] + reg["reg_alpha"] * theta["alpha"])
    for name in ("but", "bibin"):
        if name in theta:
            g[name] = np.asarray(-err + reg[f"reg_{name}"] * theta[name])
    return g


# ---------------------------------------------------------------------------------------------- SVD
@njit(cache=True, fastmath=True)
def svd_epoch(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    order: np.ndarray,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    lr: np.ndarray,
    reg: np.ndarray,
    biased: bool,
) -> float:
    """One SGD pass of (biased) SVD over ``order`` (in place); returns the sum of squared errors.

    ``lr`` / ``reg`` are ``[bu, bi, pu, qi]``.  With ``biased=False`` pass ``mu = 0`` (Surprise).
    """
    f = P.shape[1]
    lr_bu, lr_bi, lr_pu, lr_qi = lr[0], lr[1], lr[2], lr[3]
    reg_bu, reg_bi, reg_pu, reg_qi = reg[0], reg[1], reg[2], reg[3]
    sse = 0.0
    for t in range(order.shape[0]):
        e = order[t]
        u = users[e]
        i = items[e]
        pu = P[u]
        qi = Q[i]
        dot = 0.0
        for k in range(f):
            dot += pu[k] * qi[k]
        if biased:
            err = ratings[e] - (mu + bu[u] + bi[i] + dot)
            bu[u] += lr_bu * (err - reg_bu * bu[u])
            bi[i] += lr_bi * (err - reg_bi * bi[i])
        else:
            err = ratings[e] - (mu + dot)
        sse += err * err
        for k in range(f):
            puf = pu[k]
            qif = qi[k]
            pu[k] = puf + lr_pu * (err * qif - reg_pu * puf)
            qi[k] = qif + lr_qi * (err * puf - reg_qi * qif)
    return sse


# ---------------------------------------------------------------------------------------------- SVD++
@njit(cache=True, fastmath=True)
def user_implicit(indptr: np.ndarray, indices: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``Z[u] = |N(u)|^-1/2 sum_{j in N(u)} Y[j]`` for every user (zero rows for users with no items)."""
    n_users = indptr.shape[0] - 1
    f = Y.shape[1]
    Z = np.zeros((n_users, f))
    for u in range(n_users):
        n = indptr[u + 1] - indptr[u]
        if n == 0:
            continue
        for p in range(indptr[u], indptr[u + 1]):
            j = indices[p]
            for k in range(f):
                Z[u, k] += Y[j, k]
        s = 1.0 / np.sqrt(n)
        for k in range(f):
            Z[u, k] *= s
    return Z


@njit(cache=True, fastmath=True)
def _user_block_begin(indptr: np.ndarray, indices: np.ndarray, Y: np.ndarray, u: int, z0: np.ndarray) -> float:
    """``z0 <- sum_{j in N(u)} Y[j] / sqrt|N(u)|``; returns ``|N(u)|``."""
    f = Y.shape[1]
    n = indptr[u + 1] - indptr[u]
    for k in range(f):
        z0[k] = 0.0
    for p in range(indptr[u], indptr[u + 1]):
        j = indices[p]
        for k in range(f):
            z0[k] += Y[j, k]
    s = 1.0 / np.sqrt(max(n, 1))
    for k in range(f):
        z0[k] *= s
    return float(n)


@njit(cache=True, fastmath=True)
def _user_block_end(indptr: np.ndarray, indices: np.ndarray, Y: np.ndarray, u: int, c: float, d: np.ndarray) -> None:
    """Apply the accumulated ``y_j <- c y_j + d`` to every ``j in N(u)``."""
    f = Y.shape[1]
    for p in range(indptr[u], indptr[u + 1]):
        j = indices[p]
        for k in range(f):
            Y[j, k] = c * Y[j, k] + d[k]


@njit(cache=True, fastmath=True)
def svdpp_epoch(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    order: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    Y: np.ndarray,
    lr: np.ndarray,
    reg: np.ndarray,
) -> float:
    """One SGD pass of SVD++ (in place) over ``order``, which must be grouped by user.

    ``indptr`` / ``indices`` give ``N(u)`` (the training CSR); ``lr`` / ``reg`` are ``[bu, bi, pu, qi, yj]``.
    Returns the sum of squared errors.  See the module docstring for the ``(c, d)`` bookkeeping.
    """
    e0 = np.zeros(0)
    i0 = np.zeros(0, np.int64)
    return implicit_epoch(
        users, items, ratings, order, indptr, indices, mu, bu, bi, P, Q, Y, np.zeros((0, 0)),
        e0, i0, e0, e0, i0, e0, i0, lr, reg, False,
    )  # fmt: skip


@njit(cache=True, fastmath=True)
def implicit_epoch(
    rows: np.ndarray,
    cols: np.ndarray,
    ratings: np.ndarray,
    order: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    mu: float,
    b_row: np.ndarray,
    b_col: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    Y: np.ndarray,
    W: np.ndarray,
    alpha: np.ndarray,
    alpha_index: np.ndarray,
    dev: np.ndarray,
    b_day: np.ndarray,
    day_index: np.ndarray,
    b_bin: np.ndarray,
    bin_index: np.ndarray,
    lr: np.ndarray,
    reg: np.ndarray,
    timed: bool,
) -> float:
    """One SGD pass of (Time)SVD++ over ``order`` grouped by row (in place); returns the SSE.

    ``r_hat = mu + b_row[r] + b_col[c] + (Q[c] + W[c]) . (P[r] + z_r)`` with ``z_r = |N(r)|^-1/2 sum_{j in
    N(r)} Y[j]`` (``N(r)`` from ``indptr`` / ``indices``) and, when ``timed``, plus
    ``alpha[alpha_index[e]] dev[e] + b_day[day_index[e]] + b_bin[bin_index[e]]``.  Rows are users (SVD++)
    or, for the item side of two-sided SVD++, items (then ``P``, ``Q``, ``Y`` are the item, user and item
    -side implicit factors).  ``W`` (``[n_cols, f]`` or empty) is a fixed add-on to the column vectors
    (the other side's implicit sum, held constant during the pass).  ``lr`` / ``reg`` are
    ``[b_row, b_col, P, Q, Y, alpha, b_day, b_bin]`` (the first five when untimed).
    """
    f = P.shape[1]
    has_w = W.shape[0] > 0
    z0 = np.zeros(f)
    z = np.zeros(f)
    d = np.zeros(f)
    qw = np.zeros(f)
    lr_pu, lr_qi, lr_yj = lr[2], lr[3], lr[4]
    reg_pu, reg_qi = reg[2], reg[3]
    decay = 1.0 - lr[4] * reg[4]
    sse = 0.0
    cur = -1
    c = 1.0
    n = 0.0
    s = 0.0
    for t in range(order.shape[0]):
        e = order[t]
        u = rows[e]
        i = cols[e]
        if u != cur:
            if cur >= 0:
                _user_block_end(indptr, indices, Y, cur, c, d)
            cur = u
            n = _user_block_begin(indptr, indices, Y, u, z0)
            s = 1.0 / np.sqrt(max(n, 1.0))
            c = 1.0
            for k in range(f):
                d[k] = 0.0
        # current implicit sum: s * sum_j (c y_j^0 + d) = c z0 + n s d
        est = mu + b_row[u] + b_col[i]
        if timed:
            est += alpha[alpha_index[e]] * dev[e] + b_day[day_index[e]] + b_bin[bin_index[e]]
        pu = P[u]
        qi = Q[i]
        ns = n * s
        for k in range(f):
            z[k] = c * z0[k] + ns * d[k]
            qw[k] = qi[k] + W[i, k] if has_w else qi[k]
            est += qw[k] * (pu[k] + z[k])
        err = ratings[e] - est
        sse += err * err
        b_row[u] += lr[0] * (err - reg[0] * b_row[u])
        b_col[i] += lr[1] * (err - reg[1] * b_col[i])
        if timed:
            a = alpha_index[e]
            alpha[a] += lr[5] * (err * dev[e] - reg[5] * alpha[a])
            g = day_index[e]
            b_day[g] += lr[6] * (err - reg[6] * b_day[g])
            h = bin_index[e]
            b_bin[h] += lr[7] * (err - reg[7] * b_bin[h])
        c *= decay
        step_y = lr_yj * err * s
        for k in range(f):
            puf = pu[k]
            qif = qi[k]
            pu[k] = puf + lr_pu * (err * qw[k] - reg_pu * puf)
            qi[k] = qif + lr_qi * (err * (puf + z[k]) - reg_qi * qif)
            d[k] = decay * d[k] + step_y * qw[k]
    if cur >= 0:
        _user_block_end(indptr, indices, Y, cur, c, d)
    return sse


# ---------------------------------------------------------------------------------------------- NMF
@njit(cache=True, fastmath=True)
def nmf_epoch(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    user_counts: np.ndarray,
    item_counts: np.ndarray,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    lr_bu: float,
    lr_bi: float,
    reg_bu: float,
    reg_bi: float,
    reg_pu: float,
    reg_qi: float,
    biased: bool,
    alternating: bool,
) -> float:
    """One epoch of Surprise's NMF (Luo et al. 2014): bias SGD, then multiplicative factor updates.

    ``p_uf <- p_uf * sum_i q_if r_ui / (sum_i q_if r_hat_ui + |I_u| reg_pu p_uf)`` and symmetrically for
    ``q_if``, with the sums over the epoch's ratings and ``r_hat`` the estimate before the bias step.
    Factors stay non-negative when they start so.  With ``alternating`` the item sums are taken in a
    second pass with the updated ``p_u`` (Lee & Seung's alternating order) instead of from the same pass
    (Surprise).  Returns the SSE of the first pass.
    """
    n_users, f = P.shape
    n_items = Q.shape[0]
    unum = np.zeros((n_users, f))
    uden = np.zeros((n_users, f))
    inum = np.zeros((n_items, f))
    iden = np.zeros((n_items, f))
    sse = 0.0
    for e in range(users.shape[0]):
        u = users[e]
        i = items[e]
        r = ratings[e]
        est = 0.0
        for k in range(f):
            est += P[u, k] * Q[i, k]
        if biased:
            est += mu + bu[u] + bi[i]
        err = r - est
        sse += err * err
        if biased:
            bu[u] += lr_bu * (err - reg_bu * bu[u])
            bi[i] += lr_bi * (err - reg_bi * bi[i])
        for k in range(f):
            unum[u, k] += Q[i, k] * r
            uden[u, k] += Q[i, k] * est
            inum[i, k] += P[u, k] * r
            iden[i, k] += P[u, k] * est
    for u in range(n_users):
        for k in range(f):
            den = uden[u, k] + user_counts[u] * reg_pu * P[u, k]
            if den > 0.0:
                P[u, k] *= unum[u, k] / den
    if alternating:
        inum[:] = 0.0
        iden[:] = 0.0
        for e in range(users.shape[0]):
            u = users[e]
            i = items[e]
            est = 0.0
            for k in range(f):
                est += P[u, k] * Q[i, k]
            if biased:
                est += mu + bu[u] + bi[i]
            for k in range(f):
                inum[i, k] += P[u, k] * ratings[e]
                iden[i, k] += P[u, k] * est
    for i in range(n_items):
        for k in range(f):
            den = iden[i, k] + item_counts[i] * reg_qi * Q[i, k]
            if den > 0.0:
                Q[i, k] *= inum[i, k] / den
    return sse
