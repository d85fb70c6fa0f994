"""Ratings plus a directed trust graph: FilmTrust, and the Ciao / Epinions text formats.

The social matrix of the returned :class:`~fusionrec.data.Dataset` is a users x users CSR aligned with
``interactions.user_ids``: ``social[u, v]`` is the trust value ``u`` gives ``v``.  Users that appear only in the
trust file are appended to the user id map (after the rating users, sorted), so the graph loses no link;
they have empty interaction rows and their count is in ``dataset.meta["trust_only_users"]``.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fusionrec.data.dataset import Dataset
from fusionrec.data.datasets._readers import WHITESPACE, build_interactions, read_delimited
from fusionrec.data.idmap import IdMap
from fusionrec.data.interactions import DataWarning, Duplicates
from fusionrec.data.social import build_social
from fusionrec.errors import ConfigError, DatasetNotFoundError, DuplicateInteractionError

__all__ = ["build_social", "load_filmtrust", "load_trust_dataset"]

PathLike = str | os.PathLike[str]


def load_trust_dataset(
    ratings_path: PathLike,
    trust_path: PathLike,
    *,
    name: str = "trust",
    sep: str = WHITESPACE,
    rating_columns: Sequence[str] = ("user", "item", "rating"),
    trust_columns: Sequence[str] = ("trustor", "trustee", "trust"),
    header: bool = False,
    duplicates: Duplicates = "raise",
    encoding: str = "utf-8",
) -> Dataset:
    """Load ratings and a trust list in the plain-text formats of FilmTrust, Ciao and Epinions.

    Parameters
    ----------
    ratings_path
        One rating per line.  ``rating_columns`` names the fields in order; it must contain ``user``,
        ``item`` and ``rating`` and may contain ``timestamp`` and ignored extras (e.g. Ciao's
        ``("user", "item", "category", "rating", "helpfulness", "timestamp")``).
    trust_path
        One directed link per line, fields named by ``trust_columns`` (``trustor``, ``trustee`` and an
        optional ``trust`` weight, e.g. Epinions' ``1`` / ``-1``).
    name
        Dataset name.
    sep
        Field separator (default: runs of whitespace, leading whitespace ignored).
    header
        ``True`` when both files start with a header line (then the names come from the files and
        ``*_columns`` only name the fields to use).
    duplicates
        Repeated (user, item) ratings: ``"raise"`` (default) raises
        :class:`~fusionrec.errors.DuplicateInteractionError`; ``"last"``, ``"first"``, ``"mean"``, ``"max"``,
        ``"sum"`` merge them and emit a :class:`~fusionrec.data.DataWarning` with the count.
    encoding
        Text encoding of both files.

    Returns
    -------
    Dataset
        Explicit interactions (item ids and rating-user ids sorted; trust-only users appended, sorted),
        ``social`` the users x users trust CSR, ``meta`` with ``trust_links``, ``trust_only_users`` and
        ``trust_users`` counts.
    """
    for col in ("user", "item", "rating"):
        if col not in rating_columns:
            raise ConfigError(f"rating_columns must name a {col!r} field; got {list(rating_columns)}")
    for col in ("trustor", "trustee"):
        if col not in trust_columns:
            raise ConfigError(f"trust_columns must name a {col!r} field; got {list(trust_columns)}")
    rnum = [c for c in ("user", "item", "rating", "timestamp") if c in rating_columns]
    ratings = read_delimited(
        ratings_path,
        sep=sep,
        names=None if header else rating_columns,
        header=header,
        required=rnum,
        numeric=("rating",),
        encoding=encoding,
        what="ratings file",
    )
    has_trust_value = "trust" in trust_columns
    tcols = [c for c in ("trustor", "trustee", "trust") if c in trust_columns]
    trust = read_delimited(
        trust_path,
        sep=sep,
        names=None if header else trust_columns,
        header=header,
        required=tcols,
        numeric=("trust",) if has_trust_value else (),
        encoding=encoding,
        what="trust file",
    )
    users_raw = ratings["user"].to_numpy()
    user_ids, _ = IdMap.factorize(users_raw)
    link_users = np.concatenate([trust["trustor"].to_numpy(), trust["trustee"].to_numpy()])
    if user_ids.ids.dtype == object or link_users.dtype.kind not in "iu":
        link_users = link_users.astype(str)
    extra = np.unique(link_users[user_ids.to_index(link_users, missing="ignore") < 0])
    full_users = user_ids.extend(extra) if len(extra) else user_ids
    try:
        inter = build_interactions(
            ratings_path,
            users_raw,
            ratings["item"].to_numpy(),
            ratings["rating"].to_numpy(),
            ratings["timestamp"].to_numpy() if "timestamp" in ratings.columns else None,
            user_ids=full_users,
            duplicates=duplicates,
        )
    except DuplicateInteractionError as exc:
        raise DuplicateInteractionError(
            f"{exc}. {name} holds repeated ratings of the same item by the same user; they are not dropped "
            f"silently: call the loader again with duplicates='last' (keep the later line) or "
            f"duplicates='mean' (average them)"
        ) from exc
    social = build_social(
        trust["trustor"].to_numpy(),
        trust["trustee"].to_numpy(),
        full_users,
        trust["trust"].to_numpy() if has_trust_value else None,
    )
    in_graph = np.unique(full_users.to_index(link_users))
    return Dataset(
        name=name,
        interactions=inter,
        social=social,
        meta={
            "ratings_path": str(ratings_path),
            "trust_path": str(trust_path),
            "trust_links": int(social.nnz),
            "trust_rows": len(trust),
            "trust_users": len(in_graph),
            "trust_only_users": len(extra),
            "rating_users": len(user_ids),
        },
    )


def load_filmtrust(path: PathLike, *, duplicates: Duplicates | None = None) -> Dataset:
    """Load FilmTrust (Guo, Zhang & Yorke-Smith, IJCAI 2013): ``ratings.txt`` and ``trust.txt``.

    ``ratings.txt`` holds ``user item rating`` (ratings 0.5..4 in steps of 0.5), ``trust.txt`` holds
    ``trustor trustee 1`` (directed).  The published file repeats 3 (user, item) pairs.  The dataset's rule
    (``duplicates=None``, the default, so that ``load_dataset("filmtrust")`` loads the file as shipped): the
    later line wins, as a re-rating replaces a rating; the merged pairs are counted in ``meta["duplicates_merged"]``
    and logged.  Pass ``duplicates="raise"`` to refuse repeats, or ``"mean"`` / ``"first"`` / ... for another merge
    (a :class:`~fusionrec.data.DataWarning` then gives the count).  Users present only in the trust file are
    appended to the user map (``meta["trust_only_users"]``).
    """
    root = Path(path)
    if not root.is_dir():
        raise DatasetNotFoundError(f"FilmTrust directory {root} does not exist; it must hold ratings.txt and trust.txt")
    for file in ("ratings.txt", "trust.txt"):
        if not (root / file).is_file():
            raise DatasetNotFoundError(
                f"FilmTrust directory {root} lacks {file}; it must hold ratings.txt and trust.txt"
            )
    if duplicates is not None:
        return load_trust_dataset(root / "ratings.txt", root / "trust.txt", name="filmtrust", duplicates=duplicates)
    import logging

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        ds = load_trust_dataset(root / "ratings.txt", root / "trust.txt", name="filmtrust", duplicates="last")
    merged = 0
    for w in caught:
        if issubclass(w.category, DataWarning) and (m := re.search(r"merged (\d+) duplicate", str(w.message))):
            merged += int(m.group(1))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    ds.meta["duplicates_merged"] = merged
    ds.meta["duplicates_rule"] = "last (FilmTrust's rule: a later line replaces an earlier rating of the same item)"
    if merged:
        logging.getLogger(__name__).info(
            "filmtrust: %d repeated (user, item) ratings merged, the later line kept", merged
        )
    return ds
