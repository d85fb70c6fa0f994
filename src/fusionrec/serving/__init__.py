"""Serving: bundles, the HTTP API, event stores, online updates and ANN retrieval.

Imports are lazy: ``import fusionrec.serving`` loads neither FastAPI nor faiss.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "Bundle": "fusionrec.serving.bundle",
    "save_bundle": "fusionrec.serving.bundle",
    "load_bundle": "fusionrec.serving.bundle",
    "item_meta_from_dataset": "fusionrec.serving.bundle",
    "ServingSettings": "fusionrec.serving.settings",
    "create_app": "fusionrec.serving.app",
    "Event": "fusionrec.serving.store",
    "EventStore": "fusionrec.serving.store",
    "SQLiteStore": "fusionrec.serving.store",
    "PostgresStore": "fusionrec.serving.store",
    "open_store": "fusionrec.serving.store",
    "ExactIndex": "fusionrec.serving.index",
    "FaissIndex": "fusionrec.serving.index",
    "build_index": "fusionrec.serving.index",
    "recall_at_k": "fusionrec.serving.index",
    "OnlineModel": "fusionrec.serving.online",
    "ServingEngine": "fusionrec.serving.engine",
    "retrain_bundle": "fusionrec.serving.retrain",
    "Catalogue": "fusionrec.serving.catalogue",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fusionrec.serving' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
