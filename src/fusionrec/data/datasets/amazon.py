"""Amazon product reviews (McAuley et al.): the 2014 and 2018 one-object-per-line formats, plain or ``.gz``.

Reviews (both years): ``reviewerID``, ``asin``, ``overall`` (1..5), ``unixReviewTime``, ``reviewText``,
``summary`` (2018 adds ``verified``, ``vote``, ``style``, ``image``).  Metadata:

* 2014 -- Python-literal lines (``{'asin': '...', 'title': ..., 'description': '...', 'categories': [[...]],
  'imUrl': '...'}``), parsed with :func:`ast.literal_eval` (never ``eval``); strict JSON lines also accepted;
* 2018 -- JSON lines with ``title``, ``description`` (list of str), ``category`` (list), ``image`` (list of URLs),
  ``brand``, ``price`` (``"$12.99"``).

Item modalities: ``title`` (text), ``text`` (title + description), ``categories`` (categorical, the category
paths flattened to distinct labels), ``image`` (image: the first image URL, to be downloaded before encoding),
``image_urls`` (sequence: every URL), ``attributes`` (tabular: price, brand), ``reviews`` (text: the item's
review summaries and texts).  User modality ``reviews`` (text: the user's reviews).

Review text is behaviour: an item's text built from a held-out review names the held-out interaction (and its
words).  So the ``reviews`` modalities are built from the reviews of the training pairs only, given by
``train=`` (see :func:`load_amazon`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
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

if TYPE_CHECKING:
    import pandas as pd

    from fusionrec.data.interactions import Interactions
    from fusionrec.data.split import Split

__all__ = ["load_amazon", "read_amazon_meta"]

PathLike = str | os.PathLike[str]


def _as_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, list | tuple):
        return " ".join(_as_text(v) for v in value if _as_text(v))
    return str(value).strip()


def _flat_labels(value: Any) -> list[str]:
    """``[['A', 'B'], ['A', 'C']]`` or ``['A', 'B']`` -> distinct labels in first-seen order."""
    out: list[str] = []
    stack = [value]
    while stack:
        v = stack.pop(0)
        if isinstance(v, list | tuple):
            stack[:0] = list(v)
        elif isinstance(v, str) and v.strip() and v.strip() not in out:
            out.append(v.strip())
    return out


def _urls(row: Mapping[Any, Any]) -> list[str]:
    urls: list[str] = []
    for key in ("imageURLHighRes", "image", "imageURL", "imUrl"):
        v = row.get(key)
        if isinstance(v, str) and v.strip():
            urls.append(v.strip())
        elif isinstance(v, list | tuple):
            urls.extend(str(u).strip() for u in v if isinstance(u, str) and u.strip())
    seen: dict[str, None] = dict.fromkeys(urls)
    return list(seen)


def _price(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        text = value.replace("$", "").replace(",", "").strip()
        try:
            return float(text)
        except ValueError:
            return float("nan")
    return float("nan")


def read_amazon_meta(path: PathLike) -> dict[str, Modality]:
    """Item modalities from a 2014 (Python-literal) or 2018 (JSON) Amazon metadata file.

    One record per product (the first one of a repeated ``asin`` wins).  See the module docstring for the
    modalities returned.
    """
    import pandas as pd

    frame = read_json_lines(path, required=("asin",), literal=True, what="Amazon metadata file")
    frame = frame[~frame["asin"].astype(str).duplicated(keep="first").to_numpy()]
    records = frame.to_dict("records")  # one per product, not per interaction
    ids = IdMap(frame["asin"].astype(str).to_numpy())
    titles = [_as_text(r.get("title")) for r in records]
    descriptions = [_as_text(r.get("description")) for r in records]
    texts = [". ".join(x for x in (t, d) if x) for t, d in zip(titles, descriptions)]
    cats = [_flat_labels(r.get("categories", r.get("category"))) for r in records]
    urls = [_urls(r) for r in records]
    out: dict[str, Modality] = {
        "title": Modality("text", ids, titles),
        "text": Modality("text", ids, texts),
        "categories": Modality("categorical", ids, cats),
    }
    has_url = np.array([bool(u) for u in urls], dtype=bool)
    if has_url.any():
        url_ids = IdMap(ids.ids[has_url])
        kept = [u for u, h in zip(urls, has_url) if h]
        out["image"] = Modality("image", url_ids, [u[0] for u in kept])
        out["image_urls"] = Modality("sequence", url_ids, kept)
    table = pd.DataFrame(
        {
            "price": np.array([_price(r.get("price")) for r in records], dtype=np.float64),
            "brand": pd.Categorical([_as_text(r.get("brand")) or None for r in records]),
        }
    )
    out["attributes"] = Modality("tabular", ids, table)
    return out


def load_amazon(
    reviews_path: PathLike,
    meta_path: PathLike | None = None,
    *,
    name: str = "amazon",
    duplicates: Duplicates = "raise",
    review_text: bool = True,
    train: Interactions | Split | Literal["all"] | None = None,
) -> Dataset:
    """Load an Amazon review file (2014 or 2018 format) and optionally its metadata file.

    No leakage by default: the ``reviews`` modalities (content derived from interactions) are built only from
    the reviews whose (reviewer, product) pair is a training interaction of ``train``.  The loader cannot know
    the split before it has read the interactions, so the usual flow loads twice (cheap next to encoding)::

        split = random_split(load_amazon(reviews, meta, review_text=False), test=0.1, valid=0.1)
        dataset = load_amazon(reviews, meta, train=split.train)   # review text from training reviews only

    Parameters
    ----------
    reviews_path
        ``reviews_<Category>[_5].json[.gz]`` (2014) or ``<Category>[_5].json[.gz]`` (2018): one review per line.
    meta_path
        ``meta_<Category>.json[.gz]`` of either year; adds the item modalities of :func:`read_amazon_meta`.
    name
        Dataset name.
    duplicates
        A reviewer who reviewed the same product twice: ``"raise"`` (default, with the count) or a merge rule
        of :meth:`Interactions.from_arrays` (reported through a ``DataWarning``).
    review_text
        Add the ``reviews`` item and user text modalities (``summary. reviewText`` joined per item / user).
    train
        Which reviews the ``reviews`` modalities may use: the training :class:`Interactions` (or a
        :class:`Split`, its ``train``) -- reviews of held-out pairs are left out; ``"all"`` -- every review
        (for a final model fitted on all the data; any evaluation on such a dataset is leaky); ``None``
        (default) -- no split known, so the ``reviews`` modalities are left out (``meta["review_text"]``
        says so).

    Returns
    -------
    Dataset
        Explicit ratings (``overall``) with timestamps (``unixReviewTime``) on raw ``reviewerID`` x ``asin``.
    """
    what = "Amazon review file"
    frame = read_json_lines(reviews_path, required=("reviewerID", "asin", "overall"), what=what)
    ratings = json_numeric(frame, "overall", reviews_path, what)
    ts = None
    if "unixReviewTime" in frame.columns:
        ts = json_numeric(frame, "unixReviewTime", reviews_path, what).astype(np.int64)
    users = frame["reviewerID"].astype(str).to_numpy()
    items = frame["asin"].astype(str).to_numpy()
    inter = build_interactions(reviews_path, users, items, ratings, ts, duplicates=duplicates)
    item_mods: dict[str, Modality] = {}
    user_mods: dict[str, Modality] = {}
    meta: dict[str, Any] = {
        "reviews_path": str(reviews_path),
        "meta_path": None if meta_path is None else str(meta_path),
    }
    keep = train_pairs(users, items, train, "review text") if review_text else None
    if review_text and keep is None:
        meta["review_text"] = "left out: pass train= (the training interactions) to build it without leakage"
    elif keep is not None:
        texts = _review_texts(frame)[keep]
        meta["review_text"] = f"from {int(keep.sum())} of {len(keep)} reviews" + (
            " (every review: train='all')" if isinstance(train, str) else " (training pairs only)"
        )
        keys, joined = join_texts(items[keep], texts)
        if len(keys):
            item_mods["reviews"] = Modality("text", IdMap(keys), joined)
        keys, joined = join_texts(users[keep], texts)
        if len(keys):
            user_mods["reviews"] = Modality("text", IdMap(keys), joined, target="user")
    if meta_path is not None:
        item_mods.update(read_amazon_meta(meta_path))
    return Dataset(
        name=name,
        interactions=inter,
        item_modalities=item_mods,
        user_modalities=user_mods,
        meta=meta,
    )


def _review_texts(frame: pd.DataFrame) -> np.ndarray:
    """``summary. reviewText`` per review (vectorised string ops)."""
    import pandas as pd

    n = len(frame)
    summary = frame["summary"] if "summary" in frame.columns else pd.Series([""] * n, index=frame.index)
    body = frame["reviewText"] if "reviewText" in frame.columns else pd.Series([""] * n, index=frame.index)
    s = summary.astype(object).fillna("").astype(str).str.strip()
    b = body.astype(object).fillna("").astype(str).str.strip()
    both = (s != "") & (b != "")
    return (s + np.where(both.to_numpy(), ". ", "") + b).to_numpy(dtype=object)
