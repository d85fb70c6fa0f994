"""Loaders of real datasets (MovieLens, FilmTrust / Ciao / Epinions, MMRec, Amazon, Yelp), the registry and downloads.

``load_dataset(name)`` / ``list_datasets()`` / ``load_benchmark_split(name)`` work by name; the format loaders
(``load_ml100k``, ``load_movielens``, ``load_filmtrust``, ``load_mmrec``, ``load_amazon``, ``load_yelp``, ...) read
a folder or files directly.  Every loader returns a :class:`fusionrec.data.Dataset` built with the vectorised
builders, with side information keyed by raw ids.  ``fetch`` (in :mod:`.download`) downloads verified archives.
"""

from fusionrec.data.datasets.amazon import load_amazon, read_amazon_meta
from fusionrec.data.datasets.download import fetch
from fusionrec.data.datasets.mmrec import load_mmrec
from fusionrec.data.datasets.movielens import (
    load_ml100k,
    load_ml100k_fold,
    load_ml_posters,
    load_movielens,
    poster_modality,
)
from fusionrec.data.datasets.registry import (
    BENCHMARK_SPLITS,
    DatasetInfo,
    list_datasets,
    load_benchmark_split,
    load_dataset,
)
from fusionrec.data.datasets.social import load_filmtrust, load_trust_dataset
from fusionrec.data.datasets.tiktok import load_tiktok, load_tiktok_split
from fusionrec.data.datasets.yelp import load_yelp, parse_friends
from fusionrec.data.social import build_social

__all__ = [
    "BENCHMARK_SPLITS",
    "DatasetInfo",
    "build_social",
    "fetch",
    "list_datasets",
    "load_amazon",
    "load_benchmark_split",
    "load_dataset",
    "load_filmtrust",
    "load_ml100k",
    "load_ml100k_fold",
    "load_ml_posters",
    "load_mmrec",
    "load_movielens",
    "load_tiktok",
    "load_tiktok_split",
    "load_trust_dataset",
    "load_yelp",
    "parse_friends",
    "poster_modality",
    "read_amazon_meta",
]
