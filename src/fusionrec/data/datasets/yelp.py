"""The Yelp Open Dataset JSON files: ``review.json`` (ratings), ``business.json`` (items), ``user.json`` (friends).

Ratings are review ``stars`` with the review ``date`` as timestamp.  Item modalities: ``name`` (text),
``categories`` (categorical; ``"Bars, Pubs"`` strings or lists), ``attributes`` (tabular: one column per
attribute, raw string values), ``location`` (tabular: city, state, latitude, longitude, stars, review_count),
``reviews`` (text, the business's reviews joined).  User modality ``profile`` (tabular: the numeric columns
of ``user.json``).  ``friends`` (``"id1, id2"``, a list, or ``"None"``) becomes the social CSR; users known
only from ``user.json`` are appended to the user map, links to users in neither file are dropped (counted in
``meta["dropped_friend_links"]``).

Content derived from the reviews is behaviour and is built from the training reviews only (``train=``, see
:func:`load_yelp`): the ``reviews`` text, and the rating aggregates Yelp computes over every review (business
``stars`` / ``review_count``, user ``review_count`` / ``average_stars``), which are recomputed from the training
reviews -- or left out when no split is known.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from fusionrec.data.dataset import Dataset
from fusionrec.data.datasets._readers import (
    build_interactions,
    join_texts,
    json_numeric,
    read_json_lines,
    train_pairs,
)
from fusionrec.data.idmap import IdMap
from fusionrec.data.interactions import Duplicates
from fusionrec.data.modalities import Modality
from fusionrec.data.social import build_social
from fusionrec.errors import DatasetNotFoundError, InvalidValueError

if TYPE_CHECKING:
    from fusionrec.data.interactions import Interactions
    from fusionrec.data.split import Split

__all__ = ["load_yelp", "parse_friends"]

PathLike = str | os.PathLike[str]
_EMPTY = {"", "none", "null", "nan"}


def _labels(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        items = [str(v) for v in value]
    elif isinstance(value, str):
        items = value.split(",")
    else:
        return []
    return [s.strip() for s in items if s.strip() and s.strip().lower() not in _EMPTY]


def parse_friends(value: Any) -> list[str]:
    """``"id1, id2"`` / ``["id1", "id2"]`` / ``"None"`` -> list of friend ids."""
    return _labels(value)


def _find(root: Path, stem: str) -> Path:
    for name in (f"{stem}.json", f"{stem}.json.gz", f"yelp_academic_dataset_{stem}.json"):
        if (root / name).is_file():
            return root / name
    raise DatasetNotFoundError(
        f"no {stem}.json (or yelp_academic_dataset_{stem}.json) in {root}; point at the unpacked Yelp folder"
    )


def load_yelp(
    path: PathLike,
    *,
    duplicates: Duplicates = "raise",
    review_text: bool = True,
    name: str = "yelp",
    train: Interactions | Split | Literal["all"] | None = None,
) -> Dataset:
    """Load the Yelp dataset folder.

    No leakage by default: review text and rating aggregates come from the reviews whose (user, business)
    pair is a training interaction of ``train``; load once to split, then again with ``train=split.train``.

    Parameters
    ----------
    path
        Folder with ``review.json`` and optional ``business.json`` and ``user.json`` (the
        ``yelp_academic_dataset_*.json`` names and ``.gz`` are accepted).
    duplicates
        Yelp users often review a business twice: ``"raise"`` (default, with the count) or a merge rule of
        :meth:`Interactions.from_arrays`, e.g. ``"last"`` (the later review; a ``DataWarning`` reports the count).
    review_text
        Add the ``reviews`` item text modality.
    name
        Dataset name.
    train
        The training :class:`Interactions` (or a :class:`Split`): review text and the aggregates (business
        ``stars`` / ``review_count``, user ``review_count`` / ``average_stars``) come from its reviews only;
        ``"all"``: Yelp's own aggregates and every review (for a final model, never for an evaluation);
        ``None`` (default): the ``reviews`` text and those aggregate columns are left out.
    """
    import pandas as pd

    root = Path(path)
    if not root.is_dir():
        raise DatasetNotFoundError(f"Yelp directory {root} does not exist; it must hold review.json")
    review_path = _find(root, "review")
    what = "Yelp review file"
    reviews = read_json_lines(review_path, required=("user_id", "business_id", "stars"), what=what)
    stars = json_numeric(reviews, "stars", review_path, what)
    users_raw = reviews["user_id"].astype(str).to_numpy()
    items_raw = reviews["business_id"].astype(str).to_numpy()
    ts = _review_times(reviews, review_path) if "date" in reviews.columns else None

    user_ids, _ = IdMap.factorize(users_raw)
    user_mods: dict[str, Modality] = {}
    social = None
    meta: dict[str, Any] = {"path": str(root)}
    try:
        user_path: Path | None = _find(root, "user")
    except DatasetNotFoundError:
        user_path = None
    if user_path is not None:
        users = read_json_lines(user_path, required=("user_id",), what="Yelp user file")
        users = users[~users["user_id"].astype(str).duplicated(keep="first").to_numpy()]
        uid = users["user_id"].astype(str).to_numpy()
        extra = np.sort(uid[user_ids.to_index(uid, missing="ignore") < 0])
        if len(extra):
            user_ids = user_ids.extend(extra)
        meta["profile_only_users"] = len(extra)
        numeric = [
            c
            for c in users.columns
            if c not in ("user_id", "friends", "name", "elite", "yelping_since")
            and pd.api.types.is_numeric_dtype(pd.to_numeric(users[c], errors="coerce"))
            and pd.to_numeric(users[c], errors="coerce").notna().any()
        ]
        if not (isinstance(train, str) and train == "all"):
            numeric = [c for c in numeric if c not in _USER_AGGREGATES]
        table = pd.DataFrame({c: pd.to_numeric(users[c], errors="coerce").to_numpy(np.float64) for c in numeric})
        if "yelping_since" in users.columns:
            table["yelping_since"] = pd.to_datetime(users["yelping_since"], errors="coerce").to_numpy()
        user_mods["profile"] = Modality("tabular", IdMap(uid), table, target="user")
        if "friends" in users.columns:
            friend_lists = [parse_friends(v) for v in users["friends"].tolist()]  # per user, not per rating
            counts = np.array([len(f) for f in friend_lists], dtype=np.int64)
            src = np.repeat(uid, counts)
            dst = np.array([f for fl in friend_lists for f in fl], dtype=object)
            known = (user_ids.to_index(dst, missing="ignore") >= 0) if len(dst) else np.zeros(0, dtype=bool)
            meta["dropped_friend_links"] = int((~known).sum())
            social = build_social(src[known], dst[known], user_ids)
            meta["friend_links"] = int(social.nnz)

    inter = build_interactions(review_path, users_raw, items_raw, stars, ts, user_ids=user_ids, duplicates=duplicates)
    keep = train_pairs(users_raw, items_raw, train, "review text and rating aggregates")
    own = keep is not None and not isinstance(train, str)  # recompute the aggregates from the training reviews
    meta["review_content"] = (
        "left out: pass train= (the training interactions) to build it without leakage"
        if keep is None
        else f"from {int(keep.sum())} of {len(keep)} reviews"
    )
    if own and keep is not None and "profile" in user_mods:
        prof = user_mods["profile"]
        counts, means = _aggregates(users_raw[keep], stars[keep], prof.ids.ids)
        prof.data["review_count"], prof.data["average_stars"] = counts, means
    item_mods: dict[str, Modality] = {}
    if review_text and keep is not None and "text" in reviews.columns:
        keys, joined = join_texts(items_raw[keep], reviews["text"].to_numpy()[keep])
        if len(keys):
            item_mods["reviews"] = Modality("text", IdMap(keys), joined)
    try:
        business_path: Path | None = _find(root, "business")
    except DatasetNotFoundError:
        business_path = None
    if business_path is not None:
        business = _business_modalities(business_path)
        loc = business.get("location")
        if loc is not None and not (isinstance(train, str) and train == "all"):
            for c in _BUSINESS_AGGREGATES:
                if c in loc.data.columns:
                    del loc.data[c]
            if own and keep is not None:
                counts, means = _aggregates(items_raw[keep], stars[keep], loc.ids.ids)
                loc.data["stars"], loc.data["review_count"] = means, counts
        item_mods.update(business)
    return Dataset(
        name=name, interactions=inter, item_modalities=item_mods, user_modalities=user_mods, social=social, meta=meta
    )


#: columns Yelp computes over every review (held-out ones included): recomputed from ``train`` or left out
_USER_AGGREGATES = ("review_count", "average_stars")
_BUSINESS_AGGREGATES = ("stars", "review_count")


def _aggregates(keys: np.ndarray, stars: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Count and mean of ``stars`` per id of ``ids`` (0 and NaN for ids without a review)."""
    import pandas as pd

    grouped = pd.Series(np.asarray(stars, dtype=np.float64)).groupby(pd.Series(keys).astype(str).to_numpy())
    index = pd.Index(np.asarray(ids).astype(str))
    counts = grouped.size().reindex(index, fill_value=0).to_numpy(np.float64)
    means = grouped.mean().reindex(index).to_numpy(np.float64)
    return counts, means


def _review_times(reviews: Any, path: Path) -> np.ndarray | None:
    """Review ``date`` strings (``"2016-03-09 00:00:00"`` or ISO dates) as epoch seconds; ``None`` if all absent."""
    import pandas as pd

    raw = reviews["date"]
    given = raw.notna().to_numpy()
    if not given.any():
        return None
    parsed = pd.to_datetime(raw, format="ISO8601", errors="coerce", utc=True)
    bad = parsed.isna().to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise InvalidValueError(
            f"Yelp review file {path}, line {int(reviews.index[pos]) + 1}: 'date' must be a date like "
            f"'2016-03-09 00:00:00', got {raw.iloc[pos]!r} ({int(bad.sum())} such line(s)); fix or remove them"
        )
    return ((parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy().astype(np.int64)


def _business_modalities(path: Path) -> dict[str, Modality]:
    import pandas as pd

    frame = read_json_lines(path, required=("business_id",), what="Yelp business file")
    frame = frame[~frame["business_id"].astype(str).duplicated(keep="first").to_numpy()]
    ids = IdMap(frame["business_id"].astype(str).to_numpy())
    out: dict[str, Modality] = {}
    if "name" in frame.columns:
        out["name"] = Modality("text", ids, frame["name"].astype(object).fillna("").astype(str).tolist())
    if "categories" in frame.columns:
        out["categories"] = Modality("categorical", ids, [_labels(v) for v in frame["categories"].tolist()])
    if "attributes" in frame.columns:
        records = [v if isinstance(v, dict) else {} for v in frame["attributes"].tolist()]
        names = sorted({k for r in records for k in r})
        attrs = pd.DataFrame(
            {k: pd.Series([None if r.get(k) is None else str(r[k]) for r in records], dtype=object) for k in names},
            index=range(len(records)),
        )
        out["attributes"] = Modality("tabular", ids, attrs.reset_index(drop=True))
    loc_cols = [c for c in ("city", "state", "latitude", "longitude", "stars", "review_count") if c in frame.columns]
    if loc_cols:
        loc = pd.DataFrame(index=range(len(frame)))
        for c in loc_cols:
            if c in ("city", "state"):
                loc[c] = pd.Categorical(frame[c].astype(object).fillna("").astype(str).to_numpy())
            else:
                loc[c] = pd.to_numeric(frame[c], errors="coerce").to_numpy(np.float64)
        out["location"] = Modality("tabular", ids, loc)
    return out
