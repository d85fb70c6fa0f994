"""The social graph of a dataset: a users x users CSR of directed, weighted links (trust, friendship).

One builder, :func:`build_social`, used by every reader (``from_files``, FilmTrust / Ciao / Epinions, Yelp).
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from fusionrec.data.idmap import IdMap
from fusionrec.data.interactions import VALUE_LIMIT, DataWarning, _rows
from fusionrec.errors import InvalidValueError

__all__ = ["build_social"]


def build_social(
    trustor: Any,
    trustee: Any,
    user_ids: IdMap,
    values: Any | None = None,
    *,
    duplicates: Literal["max", "sum", "last"] = "max",
) -> sp.csr_matrix:
    """Users x users CSR (float32) of directed links ``trustor -> trustee``, aligned with ``user_ids``.

    Parameters
    ----------
    trustor, trustee
        Raw user ids, one per link; every id must be in ``user_ids``.
    user_ids
        The dataset's user map (extend it first with :meth:`IdMap.extend` for link-only users).
    values
        Link weights (default 1).
    duplicates
        How repeated links merge: ``"max"`` (default), ``"sum"`` or ``"last"`` (file order); merged links are
        reported through a :class:`~fusionrec.data.DataWarning`.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``S[u, v] = w(u -> v)``, sorted indices, no duplicates, explicit zero weights removed.
    """
    src = user_ids.to_index(trustor)
    dst = user_ids.to_index(trustee)
    n = len(user_ids)
    w = np.ones(len(src), dtype=np.float64) if values is None else np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(w) | (np.abs(w) > VALUE_LIMIT)
    if bad.any():
        raise InvalidValueError(
            f"{int(bad.sum())} social link weight(s) are NaN, infinite or beyond +-{VALUE_LIMIT:.3g} (stored as "
            f"float32), at {_rows(bad)} of the links; fix or drop those links"
        )
    key = src * n + dst
    order = np.argsort(key, kind="stable")
    key, w = key[order], w[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    n_dup = int(len(key) - first.sum())
    if n_dup:
        starts = np.flatnonzero(first)
        if duplicates == "sum":
            w = np.add.reduceat(w, starts)
        elif duplicates == "max":
            w = np.maximum.reduceat(w, starts)
        else:
            w = w[np.append(starts[1:], len(key)) - 1]
        key = key[starts]
        warnings.warn(
            f"merged {n_dup} repeated social link(s) with duplicates={duplicates!r}", DataWarning, stacklevel=2
        )
    mat = sp.csr_matrix((w.astype(np.float32), (key // n, key % n)), shape=(n, n))
    mat.eliminate_zeros()
    mat.sort_indices()
    return mat
