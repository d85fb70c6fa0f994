"""Serving fixtures: a registered tiny factor model, bundles, settings and a TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import Interactions
from fusionrec.models import registry
from tests.conftest import make_interactions
from tests.serving._models import TINY_NAME, TINY_PATH, TinyMF


@pytest.fixture(autouse=True)
def _register_tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.MODELS, TINY_NAME, TINY_PATH)


@pytest.fixture
def implicit_train() -> Interactions:
    return make_interactions(n_users=50, n_items=40, seed=3, explicit=False)


def item_meta(train: Interactions) -> dict[str, list]:
    n = train.n_items
    genres = [["Comedy"] if j % 3 == 0 else (["Drama", "Comedy"] if j % 3 == 1 else ["Horror"]) for j in range(n)]
    return {
        "title": [f"Movie {x} the {'funny' if j % 3 == 0 else 'sad'} one" for j, x in enumerate(train.item_ids.ids)],
        "genres": genres,
    }


@pytest.fixture
def tiny_bundle(tmp_path: Path, implicit_train: Interactions) -> Path:
    from fusionrec.serving import save_bundle

    model = TinyMF(n_factors=6).fit(implicit_train)
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(implicit_train.n_items, 5)).astype(np.float32)
    return save_bundle(tmp_path / "tiny", model, implicit_train, item_meta(implicit_train), item_features=feats)


@pytest.fixture
def pop_bundle(tmp_path: Path, implicit_train: Interactions) -> Path:
    from fusionrec.models import MostPopular
    from fusionrec.serving import save_bundle

    return save_bundle(tmp_path / "pop", MostPopular().fit(implicit_train), implicit_train, item_meta(implicit_train))


def make_client(bundle: Path, **settings_kw: object) -> Iterator:
    from fastapi.testclient import TestClient

    from fusionrec.serving import ServingSettings, create_app

    # a server with a key guards user reads by default (test_forget checks that); tests of other features read
    # without the key unless they ask for the guard
    settings_kw.setdefault("user_reads_require_key", False)
    settings = ServingSettings(bundle_path=bundle, store_url=f"sqlite:///{bundle}.db", sync_interval_s=0, **settings_kw)  # type: ignore[arg-type]
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def client(tiny_bundle: Path) -> Iterator:
    yield from make_client(tiny_bundle, api_key="secret")


@pytest.fixture
def pop_client(pop_bundle: Path) -> Iterator:
    yield from make_client(pop_bundle)
