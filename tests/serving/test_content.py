"""New items with raw content: encoded with the bundle's fitted encoders and placed by the model's add_items
(HybridMF) or at their content neighbours (factor models); kept across restarts and retrains."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fusionrec.data import Interactions
from fusionrec.data.side import SideInfo
from tests.serving.conftest import make_client

KEY = {"X-API-Key": "k"}
GENRES = ["Horror", "Comedy", "Drama"]
WORDS = {"Horror": "ghost blood night scream", "Comedy": "laugh funny party joke", "Drama": "tears family war love"}
N_ITEMS, N_USERS = 45, 60
NEW = {"title": "ghost scream night", "genres": ["Horror"]}


def _genre(j: int) -> str:
    return GENRES[j % 3]


def _title(j: int) -> str:
    w = WORDS[_genre(j)].split()
    return f"{w[j % 4]} {w[(j + 1) % 4]} {j}"


def _train() -> Interactions:
    rng = np.random.default_rng(0)
    users, items = [], []
    for u in range(N_USERS):  # user u likes genre u % 3
        pool = np.flatnonzero(np.arange(N_ITEMS) % 3 == u % 3)
        for i in [*rng.choice(pool, 6, replace=False), int(rng.integers(N_ITEMS))]:
            users.append(f"u{u}")
            items.append(f"i{i}")
    import warnings

    from fusionrec.data.interactions import DataWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return Interactions.from_arrays(np.array(users), np.array(items), explicit=False, duplicates="max")


def _side(train: Interactions) -> SideInfo:
    from fusionrec.features import MultiHotEncoder, TfidfEncoder

    order = [int(str(x)[1:]) for x in train.item_ids.ids]
    titles, genres = [_title(j) for j in order], [[_genre(j)] for j in order]
    t_enc, g_enc = TfidfEncoder().fit(titles), MultiHotEncoder().fit(genres)
    import scipy.sparse as sp

    age = np.random.default_rng(1).random((train.n_users, 2)).astype(np.float32)
    friends = sp.csr_matrix(sp.random(train.n_users, train.n_users, density=0.05, random_state=0, dtype=np.float32))
    return SideInfo(
        item_features={"title": t_enc.transform(titles), "genres": g_enc.transform(genres)},
        user_features={"age": age},
        social=friends,
        item_encoders={"title": t_enc, "genres": g_enc},
        item_kinds={"title": "text", "genres": "categorical"},
        user_kinds={"age": "tabular"},
    )


@pytest.fixture
def content_bundle(tmp_path: Path) -> Path:
    from fusionrec.models.hybrid import HybridMF
    from fusionrec.serving import save_bundle

    train = _train()
    side = _side(train)
    model = HybridMF(n_factors=8, epochs=10, item_identity=False, seed=0).fit(train, side)
    order = [int(str(x)[1:]) for x in train.item_ids.ids]
    meta = {"title": [_title(j) for j in order], "genres": [[_genre(j)] for j in order]}
    return save_bundle(tmp_path / "hybrid", model, train, meta, side=side)


@pytest.fixture
def content_client(content_bundle: Path) -> Iterator[Any]:
    yield from make_client(content_bundle, api_key="k")


def _genres_of(client: Any, items: list[Any]) -> list[list[str]]:
    st = client.app.state.engine.state
    return [st.item_meta["genres"][st.item_index(x)] for x in items]


def _placed_by_content(client: Any, item: str = "new") -> bool:
    """The new item's 5 most similar items are Horror, and a Horror fan gets it before every other genre."""
    sim = [x["item"] for x in client.get(f"/similar/{item}", params={"k": 5}).json()["items"]]
    recs = [x["item"] for x in client.get("/recommend", params={"user": "u0", "k": 50}).json()["items"]]
    before = recs[: recs.index(item)]
    return all(g == ["Horror"] for g in _genres_of(client, sim)) and all(
        g == ["Horror"] for g in _genres_of(client, before)
    )


def test_bundle_keeps_side_information_and_encoders(content_bundle: Path) -> None:
    from fusionrec.serving import load_bundle

    b = load_bundle(content_bundle)
    assert b.side is not None and set(b.side.item_features) == {"title", "genres"}
    assert b.side.item_kinds == {"title": "text", "genres": "categorical"} and set(b.side.item_encoders) == {
        "title",
        "genres",
    }
    assert b.side.user_features["age"].shape == (N_USERS, 2)
    again = b.side.encode_items({"title": [_title(3)], "genres": [[_genre(3)]]})
    np.testing.assert_allclose(again["title"][0], b.side.item_features["title"][b.item_ids.to_index(["i3"])[0]])


def test_post_item_with_raw_content_is_placed_by_content(content_client: Any) -> None:
    r = content_client.post("/items", json={"item": "new", "title": "Night of the ghost", "content": NEW}, headers=KEY)
    assert r.status_code == 201, r.text
    assert content_client.get("/health").json()["content"]["placement"] == "content"
    assert _placed_by_content(content_client)
    ex = content_client.get("/explain", params={"user": "u0", "item": "new"}).json()
    assert ex["content"]["modality"] in ("title", "genres") and ex["content"]["words"]
    assert set(ex["content"]["words"]) <= {*WORDS["Horror"].split(), "Horror"}
    parts = ex["attribution"]["parts"]  # HybridMF: the score split exactly by modality, placed item included
    assert {"title", "genres"} <= set(parts) and abs(sum(parts.values()) - ex["score"]) < 1e-4 * max(
        1, abs(ex["score"])
    )
    bad = content_client.post("/items", json={"item": "x", "content": {"colour": "red"}}, headers=KEY)
    assert bad.status_code == 422 and "colour" in bad.json()["detail"][0]["msg"]


def test_removing_the_content_placement_is_detected(content_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above fails when add_items ignores the content (the item lands at the imputed mean)."""
    from fusionrec.models.hybrid import HybridMF

    original = HybridMF.add_items

    def at_the_mean(self: HybridMF, features: dict[str, np.ndarray]) -> np.ndarray:
        return original(self, {k: np.zeros_like(v) for k, v in features.items()})

    monkeypatch.setattr(HybridMF, "add_items", at_the_mean)
    assert content_client.post("/items", json={"item": "new", "content": NEW}, headers=KEY).status_code == 201
    assert not _placed_by_content(content_client)


def test_restart_replays_the_posted_content(content_bundle: Path) -> None:
    gen = make_client(content_bundle, api_key="k")
    c = next(gen)
    assert c.post("/items", json={"item": "new", "content": NEW}, headers=KEY).status_code == 201
    with pytest.raises(StopIteration):
        next(gen)
    gen = make_client(content_bundle, api_key="k")
    c = next(gen)
    try:
        assert _placed_by_content(c)
    finally:
        with pytest.raises(StopIteration):
            next(gen)


def test_retrain_keeps_side_information(content_client: Any, content_bundle: Path) -> None:
    from fusionrec.serving import load_bundle

    c = content_client
    assert c.post("/items", json={"item": "new", "content": NEW}, headers=KEY).status_code == 201
    later = {"title": "blood night scream", "genres": ["Horror"]}
    assert c.post("/items", json={"item": "later", "content": later}, headers=KEY).status_code == 201
    events = [{"user": f"u{u}", "item": "new"} for u in (3, 6, 12)] + [{"user": "fresh", "item": "i0"}]
    assert c.post("/events", json={"events": events}, headers=KEY).status_code == 200
    encoded = c.app.state.engine.state.side.encode_items({k: [v] for k, v in NEW.items()})
    r = c.post("/admin/retrain", params={"wait": True}, headers=KEY)
    assert r.status_code == 202 and r.json()["status"]["last_error"] is None
    b = load_bundle(content_bundle)
    assert b.side is not None and set(b.side.item_encoders) == {"title", "genres"}
    assert "new" in b.item_ids and "later" not in b.item_ids  # no events: replayed from the store
    j = int(b.item_ids.to_index(["new"])[0])
    np.testing.assert_allclose(b.side.item_features["title"][j], encoded["title"][0], atol=1e-6)
    assert b.side.item_present["genres"][j]
    f = int(b.user_ids.to_index(["fresh"])[0])
    assert b.side.user_features["age"].shape[0] == len(b.user_ids) and not b.side.user_features["age"][f].any()
    assert b.side.social is not None and b.side.social.shape == (len(b.user_ids),) * 2 and b.side.social[f].nnz == 0
    assert _placed_by_content(c, "new") and _placed_by_content(c, "later")


def test_a_model_fitted_on_some_modalities_gets_only_those(tmp_path: Path) -> None:
    from fusionrec.models.content import ContentKNN
    from fusionrec.serving import load_bundle, save_bundle
    from fusionrec.serving.engine import OnlineModel

    train = _train()
    side = _side(train)
    model = ContentKNN(modalities=["genres"]).fit(train, side)
    state = OnlineModel(load_bundle(save_bundle(tmp_path / "knn", model, train, side=side)))
    i = state.add_item("new", content=NEW)  # title is encoded and kept, but ContentKNN only sees genres
    assert state.model.n_items_ == i + 1 and state.side is not None and state.side.item_present["title"][i]
    top, _ = state.similar("new", 5)
    assert all(_genre(int(str(state.item_raw[j])[1:])) == "Horror" for j in top.tolist())
