"""Loaders of real datasets (MovieLens, FilmTrust / Ciao / Epinions, MMRec, Amazon, Yelp), the registry and downloads."""

from fusionrec.data.datasets.movielens import load_ml100k, load_ml100k_fold

__all__ = ["load_ml100k", "load_ml100k_fold"]
