"""Sequential recommenders (fusionrec.models.sequential): SASRec, BERT4Rec, GRU4Rec and the content-aware SASRec.

The planted pattern: every user walks the catalogue in steps of one (item ``i`` is followed by ``i + 1``, modulo
the catalogue), starting anywhere; a sequence model learns the step, popularity cannot.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import IdMap, Interactions
from fusionrec.data.splits import leave_last_out
from fusionrec.errors import ConfigError, DataError
from fusionrec.evaluation import evaluate_ranking
from fusionrec.models import Recommender, SideInfo, load_model, make_model
from fusionrec.models.baselines import MostPopular
from fusionrec.models.declaration import undeclared_state
from fusionrec.models.sequential import CNNLSTM, BERT4Rec, GRU4Rec, SASRec, user_sequences

from ..conftest import make_interactions
from .contract import RecommenderContract

pytest.importorskip("torch")

N_USERS, N_ITEMS = 60, 30


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Single-threaded torch for determinism (the models also default to threads=1)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def walk_data(seed: int = 0, length: tuple[int, int] = (6, 12)) -> tuple[Interactions, np.ndarray]:
    """Users walk i, i+1, i+2, ... (mod N_ITEMS) from a random start; returns the data and each user's next item."""
    rng = np.random.default_rng(seed)
    users, items, times, nxt = [], [], [], []
    for u in range(N_USERS):
        start, n, t0 = int(rng.integers(N_ITEMS)), int(rng.integers(*length)), int(rng.integers(10**6))
        for t in range(n):
            users.append(u)
            items.append((start + t) % N_ITEMS)
            times.append(t0 + 3600 * t)
        nxt.append((start + n) % N_ITEMS)
    train = Interactions.from_arrays(
        np.array(users), np.array(items), None, np.array(times),
        user_ids=IdMap(range(N_USERS)), item_ids=IdMap(range(N_ITEMS)),
    )  # fmt: skip
    return train, np.array(nxt)


def sasrec(**kw: object) -> SASRec:
    return SASRec(**{"n_factors": 32, "epochs": 40, "lr": 0.005, "dropout": 0.1, "seed": 0, **kw})  # type: ignore[arg-type]


def gru4rec(**kw: object) -> GRU4Rec:
    return GRU4Rec(**{"n_factors": 32, "epochs": 40, "lr": 0.005, "dropout": 0.1, "seed": 0, **kw})  # type: ignore[arg-type]


def bert4rec(**kw: object) -> BERT4Rec:
    # one window per user here (sequences shorter than max_len): small batches give the cloze task enough steps
    return BERT4Rec(**{"n_factors": 32, "epochs": 60, "batch_size": 16, "lr": 0.005, "dropout": 0.1, "seed": 0, **kw})  # type: ignore[arg-type]


def hit_rate(model: Recommender, nxt: np.ndarray, k: int = 5) -> float:
    top, _ = model.recommend(np.arange(N_USERS), k=k, exclude_seen=False)
    return float(np.mean([nxt[u] in top[u] for u in range(N_USERS)]))


# ---------------------------------------------------------------------- contract
class TestSASRecContract(RecommenderContract):
    implicit = True
    fold_in_overlap = 0.2  # the contract folds in the history in item order, not the user's time order

    def make_model(self) -> Recommender:
        return SASRec(n_factors=8, epochs=2, max_len=10)


class TestBERT4RecContract(RecommenderContract):
    implicit = True
    fold_in_overlap = 0.2

    def make_model(self) -> Recommender:
        return BERT4Rec(n_factors=8, epochs=2, max_len=10)


class TestGRU4RecContract(RecommenderContract):
    implicit = True
    fold_in_overlap = 0.2

    def make_model(self) -> Recommender:
        return GRU4Rec(n_factors=8, epochs=2, max_len=10)


def image_side(n_items: int, d: int = 12, seed: int = 2) -> SideInfo:
    """Random "image" vectors for the items (kind image), with one item missing its image."""
    x = np.random.default_rng(seed).normal(size=(n_items, d)).astype(np.float32)
    x[0] = 0
    present = np.ones(n_items, dtype=bool)
    present[0] = False
    return SideInfo(item_features={"image": x}, item_present={"image": present}, item_kinds={"image": "image"})


def cnnlstm(**kw: object) -> CNNLSTM:
    return CNNLSTM(**{"n_factors": 32, "epochs": 40, "lr": 0.005, "dropout": 0.1, "seed": 0, **kw})  # type: ignore[arg-type]


class TestCNNLSTMContract(RecommenderContract):
    implicit = True
    fold_in_overlap = 0.2

    def make_model(self) -> Recommender:
        return CNNLSTM(n_factors=8, epochs=2, max_len=10)

    def make_side(self, train: Interactions) -> SideInfo | None:
        return image_side(train.n_items)


# ---------------------------------------------------------------------- learning the next item
@pytest.mark.parametrize(
    "factory", [sasrec, gru4rec, bert4rec, lambda: sasrec(every_prefix=True, epochs=10)],
    ids=["SASRec", "GRU4Rec", "BERT4Rec", "SASRec-every-prefix"],
)  # fmt: skip
def test_learns_the_next_item_that_popularity_cannot(factory) -> None:  # type: ignore[no-untyped-def]
    train, nxt = walk_data()
    assert hit_rate(factory().fit(train), nxt) >= 0.8
    assert hit_rate(MostPopular().fit(train), nxt) <= 0.4


def test_fold_in_reads_the_sequence_in_the_order_given() -> None:
    train, _ = walk_data()
    model = gru4rec().fit(train)
    forward = model.fold_in_user([10, 11, 12, 13])
    assert forward.tolist() == [N_USERS] and model.n_users_ == N_USERS + 1
    top, _ = model.recommend(forward, k=3)
    assert 14 in top[0]
    # replacing the user's sequence keeps the index and follows the new order
    assert model.fold_in_user([20, 21, 22], user=int(forward[0])).tolist() == [N_USERS]
    top, _ = model.recommend(forward, k=3)
    assert 23 in top[0] and model.n_users_ == N_USERS + 1
    with pytest.raises(ConfigError, match="item sequence"):
        model.fold_in_user([1], user_features={"age": np.ones(1)})
    with pytest.raises(DataError, match="out of range"):
        model.fold_in_user([N_ITEMS])


def test_replacing_a_known_user_keeps_their_time_order() -> None:
    """Serving re-places a user with their training items in index order followed by the new events."""
    train, nxt = walk_data()
    model = sasrec(epochs=20).fit(train)
    u = int(np.argmax([s[0] > s[-1] for s in user_sequences(train)]))  # a walk that wraps: index order != time order
    row = np.sort(train.matrix[u].indices)
    before = model.user_vectors_[u].copy()
    assert model.fold_in_user(row, user=u).tolist() == [u]
    np.testing.assert_allclose(model.user_vectors_[u], before, rtol=1e-5, atol=1e-5)
    new = [int(nxt[u]), int((nxt[u] + 1) % N_ITEMS)]
    model.fold_in_user(np.concatenate([row, new]), user=u)
    tail = model.sequences_[u][-3:] - 1
    assert tail.tolist() == [int((nxt[u] - 1) % N_ITEMS), *new]
    top, _ = model.recommend(np.array([u]), k=5)
    assert (nxt[u] + 2) % N_ITEMS in top[0]


def test_leave_last_out_evaluation_runs() -> None:
    data, _ = walk_data(length=(8, 12))
    split = leave_last_out(data)
    assert split.valid is not None
    model = sasrec(epochs=30).fit(split.train)
    res = evaluate_ranking(model, split.train, split.test, k=10, exclude=[split.train, split.valid])
    pop = evaluate_ranking(MostPopular().fit(split.train), split.train, split.test, k=10)
    # the held-out item is the train sequence's step after the validation item: the walk is two steps on
    # (the top pick, the validation item, is masked, so the test item comes second)
    assert res.metrics["NDCG@10"] > 0.5 and res.metrics["HitRate@10"] > pop.metrics["HitRate@10"] + 0.3


# ---------------------------------------------------------------------- order rule and bad input
def test_sequences_ordered_by_time_then_item_index() -> None:
    users = np.array([0, 0, 0, 1, 1])
    items = np.array([5, 2, 7, 1, 3])
    times = np.array([20, 10, 10, 5, 5])  # user 0: items 2 and 7 tie at t=10 -> 2 first
    train = Interactions.from_arrays(users, items, None, times, user_ids=IdMap([0, 1]), item_ids=IdMap(range(8)))
    seqs = user_sequences(train)
    assert seqs[0].tolist() == [2, 7, 5] and seqs[1].tolist() == [1, 3]


def test_no_timestamps_is_a_clear_error() -> None:
    train, _ = walk_data()
    bare = Interactions(train.matrix, train.user_ids, train.item_ids, None, False)
    for model in (SASRec(epochs=1), GRU4Rec(epochs=1), BERT4Rec(epochs=1)):
        with pytest.raises(DataError, match="no timestamps"):
            model.fit(bare)


def test_bad_params() -> None:
    with pytest.raises(ConfigError, match="divisible by n_heads"):
        SASRec(n_factors=10, n_heads=3, epochs=1).fit(walk_data()[0])
    with pytest.raises(ConfigError, match="BERT4Rec: n_factors=9 must be divisible by n_heads=2"):
        BERT4Rec(n_factors=9, epochs=1).fit(walk_data()[0])
    with pytest.raises(ConfigError, match="mask_prob"):
        make_model("BERT4Rec", mask_prob=1.0)
    with pytest.raises(ConfigError, match="every_prefix"):
        make_model("GRU4Rec", every_prefix="yes")
    with pytest.raises(ConfigError, match="dropout"):
        make_model("SASRec", dropout=1.0)
    with pytest.raises(ConfigError, match="max_len"):
        make_model("GRU4Rec", max_len=0)


# ---------------------------------------------------------------------- persistence and determinism
@pytest.mark.parametrize("factory", [sasrec, gru4rec, bert4rec], ids=["SASRec", "GRU4Rec", "BERT4Rec"])
def test_saved_model_folds_in_like_the_original(factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    train, _ = walk_data()
    model = factory(epochs=5).fit(train)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_allclose(loaded.score(np.arange(5)), model.score(np.arange(5)), rtol=1e-5, atol=1e-6)
    a = model.score(model.fold_in_user([3, 4, 5]))
    b = loaded.score(loaded.fold_in_user([3, 4, 5]))  # type: ignore[attr-defined]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    again = factory(epochs=5).fit(train)
    np.testing.assert_array_equal(again.user_vectors_, factory(epochs=5).fit(train).user_vectors_)


# ---------------------------------------------------------------------- content-aware SASRec
def test_content_sasrec_uses_item_features(tmp_path: Path) -> None:
    train, nxt = walk_data()
    rng = np.random.default_rng(1)
    side = SideInfo(
        item_features={
            "text": rng.normal(size=(N_ITEMS, 6)).astype(np.float32),
            "image": rng.normal(size=(N_ITEMS, 4)).astype(np.float32),
        }
    )
    with pytest.raises(ConfigError, match="needs item modality features"):
        sasrec(use_content=True).fit(train)
    with pytest.raises(ConfigError, match="unknown modalities"):
        sasrec(use_content=True, modalities=["audio"]).fit(train, side)
    model = sasrec(use_content=True, modality_weights={"text": 2.0}).fit(train, side)
    assert model.content_.shape == (N_ITEMS, 10)
    assert hit_rate(model, nxt) >= 0.8
    plain = sasrec().fit(train, side)  # use_content=False ignores the side information
    assert not hasattr(plain, "content_")
    assert not np.allclose(model.item_vectors_, plain.item_vectors_)
    model.save(tmp_path / "c")
    loaded = load_model(tmp_path / "c")
    b = loaded.score(loaded.fold_in_user([1, 2]))  # type: ignore[attr-defined]
    np.testing.assert_allclose(b, model.score(model.fold_in_user([1, 2])), rtol=1e-5, atol=1e-5)


def test_serving_recommends_from_a_new_users_recent_events(tmp_path: Path) -> None:
    """A new user's events, posted one after the other, are folded in in that order by the serving engine."""
    from fusionrec.serving import load_bundle, save_bundle
    from fusionrec.serving.engine import OnlineModel
    from fusionrec.serving.store import Event

    train, _ = walk_data()
    state = OnlineModel(load_bundle(save_bundle(tmp_path / "seq", gru4rec().fit(train), train)))
    state.apply_events([Event("new", str(i), 1.0, 100 + i, 1 + i) for i in (10, 11, 12)])
    items, _ = state.recommend("new", 3)
    assert state.item_index("13") in items.tolist()
    state.apply_events([Event("new", str(i), 1.0, 200 + i, 20 + i) for i in (20, 21)])
    items, _ = state.recommend("new", 3)
    assert state.item_index("22") in items.tolist()


def test_training_windows_cover_every_step_once() -> None:
    from fusionrec.models.sequential import _windows

    parts = _windows(np.arange(10), 4)
    assert [p.tolist() for p in parts] == [[6, 7, 8, 9], [3, 4, 5, 6], [0, 1, 2, 3]]
    assert sorted(int(t) for p in parts for t in p[1:]) == list(range(1, 10))  # each next item a target once
    assert _windows(np.arange(1), 4) == []


# ---------------------------------------------------------------------- CNN + LSTM concatenation model
def test_cnnlstm_learns_the_walk_and_concatenates_the_image_tower(tmp_path: Path) -> None:
    train, nxt = walk_data()
    side = image_side(N_ITEMS)
    model = cnnlstm().fit(train, side)
    assert hit_rate(model, nxt) >= 0.8
    d = 32
    assert model.item_vectors_.shape == (N_ITEMS, 2 * d) and model.user_vectors_.shape == (N_USERS, 2 * d)
    assert model.image_modality_ == "image"
    # the image half of an item vector is the CNN tower of its (standardised) image, the id half its embedding
    import torch

    net = model._network()
    with torch.no_grad():
        tower = net.tower(torch.from_numpy(model.content_)).numpy()
        emb = net.item_emb.weight[1:].numpy()
    np.testing.assert_allclose(model.item_vectors_[:, d:], tower, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.item_vectors_[:, :d], emb, rtol=1e-5, atol=1e-5)
    assert np.all(model.content_[0] == 0) and abs(float(model.content_[1:].mean())) < 1e-5  # missing -> mean
    # the user's image half is the mean tower vector of the images in their sequence
    seq = model.sequences_[3]
    seen = seq[seq > 0] - 1
    np.testing.assert_allclose(model.user_vectors_[3, d:], tower[seen].mean(axis=0), rtol=1e-4, atol=1e-4)
    # other images change the scores; persistence and fold-in round-trip
    other = cnnlstm().fit(train, image_side(N_ITEMS, seed=9))
    assert not np.allclose(other.score(np.arange(5)), model.score(np.arange(5)))
    model.save(tmp_path / "cl")
    loaded = load_model(tmp_path / "cl")
    np.testing.assert_allclose(loaded.score(np.arange(5)), model.score(np.arange(5)), rtol=1e-5, atol=1e-6)
    b = loaded.score(loaded.fold_in_user([4, 5, 6]))  # type: ignore[attr-defined]
    np.testing.assert_allclose(b, model.score(model.fold_in_user([4, 5, 6])), rtol=1e-5, atol=1e-5)
    top, _ = model.recommend(np.array([N_USERS]), k=3)
    assert 7 in top[0]


def test_cnnlstm_image_modality_rules() -> None:
    train, _ = walk_data()
    with pytest.raises(ConfigError, match="needs item image features"):
        cnnlstm(epochs=1).fit(train)
    text = SideInfo(item_features={"text": np.ones((N_ITEMS, 3), np.float32)}, item_kinds={"text": "text"})
    with pytest.raises(ConfigError, match="no image modality"):
        cnnlstm(epochs=1).fit(train, text)
    with pytest.raises(ConfigError, match="unknown image_modality"):
        cnnlstm(epochs=1, image_modality="poster").fit(train, text)
    model = cnnlstm(epochs=1, image_modality="text").fit(train, text)  # any dense modality may be named
    assert model.image_modality_ == "text" and model.content_.shape == (N_ITEMS, 3)
    bad = SideInfo(item_features={"image": np.full((N_ITEMS, 3), np.nan, np.float32)})
    with pytest.raises(DataError, match="non-finite"):
        cnnlstm(epochs=1).fit(train, bad)
    with pytest.raises(DataError, match="no timestamps"):
        bare = Interactions(train.matrix, train.user_ids, train.item_ids, None, False)
        cnnlstm(epochs=1).fit(bare, image_side(N_ITEMS))
    with pytest.raises(ConfigError, match="channels"):
        make_model("CNNLSTM", channels=0)


# ---------------------------------------------------------------------- equal timestamps and test-time histories
def test_equal_timestamps_split_and_sequences_follow_one_rule() -> None:
    """Equal timestamps: the smaller item index comes first in a sequence and the larger counts as later in
    leave-last-out, so the held-out items are the sequence's last steps even when every time ties."""
    users = np.array([0, 0, 0, 0, 1, 1, 1])
    items = np.array([4, 1, 3, 2, 0, 2, 1])
    times = np.array([5, 5, 5, 4, 7, 7, 7])  # user 0: 2 first (t=4), then 1, 3, 4 tie; user 1: all tie
    x = Interactions.from_arrays(users, items, None, times, user_ids=IdMap([0, 1]), item_ids=IdMap(range(5)))
    full = user_sequences(x)
    assert full[0].tolist() == [2, 1, 3, 4] and full[1].tolist() == [0, 1, 2]
    split = leave_last_out(x)
    assert split.valid is not None
    for u, seq in enumerate(full):
        assert split.test.matrix[u].indices.tolist() == [seq[-1]]
        assert split.valid.matrix[u].indices.tolist() == [seq[-2]]
        assert user_sequences(split.train)[u].tolist() == seq[:-2].tolist()


def test_refresh_histories_encodes_the_longer_sequences_without_refitting() -> None:
    data, _ = walk_data(length=(8, 12))
    split = leave_last_out(data)
    assert split.valid is not None
    model = sasrec(epochs=15).fit(split.train)
    weights = {k: v.copy() for k, v in model._net_arrays.items()}
    history = Interactions.concat([split.train, split.valid])
    expected = [model.score(model.fold_in_user(s))[0] for s in user_sequences(history)[:3]]
    fresh = sasrec(epochs=15).fit(split.train)
    fresh.refresh_histories(history)
    for u in range(3):
        np.testing.assert_allclose(fresh.score(np.array([u]))[0], expected[u], rtol=1e-4, atol=1e-5)
        assert fresh.sequences_[u][-1] - 1 == split.valid.matrix[u].indices[0]
    assert all(np.array_equal(weights[k], fresh._net_arrays[k]) for k in weights)  # the network is not refitted
    assert fresh.seen_.nnz == history.nnz
    # the test item is the valid item's successor: after the refresh the model ranks it first far more often (the
    # training part is always masked; exclude adds the valid items)
    res = evaluate_ranking(fresh, split.train, split.test, k=1, exclude=[split.valid])
    stale = evaluate_ranking(model, split.train, split.test, k=1, exclude=[split.valid])
    assert res.metrics["HitRate@1"] > stale.metrics["HitRate@1"] + 0.3
    with pytest.raises(DataError, match="training id maps"):
        one = np.zeros(1, dtype=np.int64)
        fresh.refresh_histories(Interactions.from_arrays(one, one, None, one, user_ids=IdMap([0]), item_ids=IdMap([0])))


# ---------------------------------------------------------------------- training device
def test_device_rules() -> None:
    """A device torch cannot use is a ConfigError that says what to do; "cpu" is the default and scoring stays
    on the CPU."""
    import torch

    train = walk_data()[0]
    with pytest.raises(ConfigError, match="not a torch device"):
        SASRec(epochs=1, device="gpu0").fit(train)
    with pytest.raises(ConfigError, match="not supported"):
        GRU4Rec(epochs=1, device="meta").fit(train)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="sees no CUDA GPU"):
            SASRec(epochs=1, device="cuda").fit(train)
    with pytest.raises(ConfigError, match="device"):
        make_model("SASRec", device=0)
    model = sasrec(epochs=2).fit(train)
    assert model.get_params()["device"] == "cpu"
    assert all(p.device.type == "cpu" for p in model._network().parameters())


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA GPU")
@pytest.mark.parametrize("factory", [sasrec, gru4rec], ids=["SASRec", "GRU4Rec"])
def test_cuda_training_learns_the_walk_and_scores_on_the_cpu(factory) -> None:  # type: ignore[no-untyped-def]
    train, nxt = walk_data()
    model = factory(device="cuda").fit(train)
    assert hit_rate(model, nxt) >= 0.8
    assert all(p.device.type == "cpu" for p in model._network().parameters())


# ---------------------------------------------------------------------- declaration, forgetting, vocabulary
def odd_data() -> tuple[Interactions, SideInfo]:
    """Interactions of 61 users x 42 items with timestamps (sizes unlike max_len 6, n_factors 8 / 16, the item table's
    43 rows and the feature widths 5 and 7, so that undeclared_state is exact) and item features."""
    train = make_interactions(n_users=61, n_items=43, explicit=False, seed=4)
    rng = np.random.default_rng(4)
    n = train.n_items
    side = SideInfo(
        item_features={
            "text": rng.normal(size=(n, 7)).astype(np.float32),
            "image": rng.random((n, 5)).astype(np.float32),
        },
        item_kinds={"image": "image"},
    )
    return train, side


ODD = {
    "SASRec": lambda: SASRec(n_factors=8, max_len=6, epochs=1, use_content=True),
    "BERT4Rec": lambda: BERT4Rec(n_factors=8, max_len=6, epochs=1),
    "GRU4Rec": lambda: GRU4Rec(n_factors=8, max_len=6, epochs=1),
    "CNNLSTM": lambda: CNNLSTM(n_factors=8, max_len=6, epochs=1),
}


def saved_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path / "arrays.npz", allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def holds_run(arrays: dict[str, np.ndarray], run: np.ndarray) -> list[str]:
    """Names of the arrays whose flattened values contain ``run`` as consecutive entries (same kind of number)."""
    run = np.asarray(run).ravel()
    found = []
    for key, value in arrays.items():
        flat = np.asarray(value).ravel()
        if flat.dtype.kind != run.dtype.kind or len(flat) < len(run):
            continue
        windows = np.lib.stride_tricks.sliding_window_view(flat, len(run))
        if (windows == run).all(axis=1).any():
            found.append(key)
    return found


@pytest.mark.parametrize("name", sorted(ODD))
def test_every_per_user_and_per_item_array_is_declared(name: str) -> None:
    train, side = odd_data()
    model = ODD[name]().fit(train, side)
    assert undeclared_state(model) == []
    decl = type(model).declaration()
    assert decl.user_state["sequences_"].fill == 0 and "user_vectors_" in decl.user_state
    assert decl.fit_inputs >= {"timestamps"} and decl.can_fold_in and not decl.can_add_items


@pytest.mark.parametrize("name", sorted(ODD))
def test_forget_user_leaves_no_trace_of_the_sequence_in_the_saved_files(name: str, tmp_path: Path) -> None:
    """The issue's repro: fit, forget_user(u), save: arrays.npz no longer holds u's last items in order (in the
    stored item + 1 encoding or as item indices), u's vector or raw id; the other users score as before."""
    train, side = odd_data()
    model = ODD[name]().fit(train, side)
    u = int(np.argmax(np.diff(train.matrix.indptr)))  # a user with a full max_len sequence
    seq = model.sequences_[u].copy()
    assert (seq > 0).all() and len(set(seq.tolist())) == len(seq)
    vector, raw = model.user_vectors_[u].copy(), str(model.user_id_values_[u])
    others = np.setdiff1d(np.arange(train.n_users), [u])
    before = model.score(others)

    model.save(tmp_path / "kept")
    kept = saved_arrays(tmp_path / "kept")  # the search finds all three before forgetting
    assert "sequences_" in holds_run(kept, seq) and "user_vectors_" in holds_run(kept, vector)
    assert raw in kept["user_id_values_"].tolist()

    model.forget_user(u)
    model.save(tmp_path / "m")
    arrays = saved_arrays(tmp_path / "m")
    assert holds_run(arrays, seq) == [] and holds_run(arrays, seq - 1) == []
    assert holds_run(arrays, vector) == []
    assert not any(raw in a.tolist() for a in arrays.values() if a.dtype.kind == "U")
    assert f'"{raw}"' not in (tmp_path / "m" / "manifest.json").read_text()
    loaded = load_model(tmp_path / "m")
    assert (loaded.sequences_[u] == 0).all()  # type: ignore[attr-defined]
    np.testing.assert_array_equal(model.score(others), before)
    np.testing.assert_array_equal(loaded.score(others), before)


@pytest.mark.parametrize("cls", [SASRec, GRU4Rec, CNNLSTM, BERT4Rec])
def test_weight_decay_is_now_reg(cls: type) -> None:
    with pytest.warns(FutureWarning, match="'weight_decay' was renamed 'reg'"):
        model = cls(weight_decay=0.01)
    assert model.reg == 0.01 and "weight_decay" not in model.get_params()
    with pytest.warns(FutureWarning, match="renamed"):
        model.set_params(weight_decay=0.02)
    assert model.reg == 0.02
    assert cls.upgrade_params({"weight_decay": 0.03}) == {"reg": 0.03}


# ---------------------------------------------------------------------- every prefix (RecBole's augmentation)
def test_every_prefix_makes_one_example_per_step_with_its_last_max_len_predecessors() -> None:
    from fusionrec.models.sequential import _prefix_examples

    seqs = [np.array([3, 1, 2, 0]), np.array([5]), np.array([4, 6])]
    inputs, targets = _prefix_examples(seqs, 2)  # stored as item + 1, left-padded; the target in the last column
    assert len(inputs) == sum(len(s) - 1 for s in seqs) == 4
    assert inputs.tolist() == [[0, 4], [4, 2], [2, 3], [0, 5]]
    assert targets[:, -1].tolist() == [2, 3, 1, 7] and not targets[:, :-1].any()
    # on real-sized data: one example per training step of every user (len - 1 each), every input a true prefix
    train, _ = walk_data()
    seqs = user_sequences(train)
    inputs, targets = _prefix_examples(seqs, 5)
    assert len(inputs) == train.nnz - train.n_users
    row = 0
    for s in seqs:
        for t in range(1, len(s)):
            tail = s[max(0, t - 5) : t] + 1
            assert inputs[row, 5 - len(tail) :].tolist() == tail.tolist() and targets[row, -1] == s[t] + 1
            row += 1
    assert _prefix_examples([np.array([1])], 3)[0].shape == (0, 3)


def test_every_prefix_changes_training_only() -> None:
    train, _ = walk_data()
    windows, prefixes = sasrec(epochs=2).fit(train), sasrec(epochs=2, every_prefix=True).fit(train)
    assert windows.sequences_.tolist() == prefixes.sequences_.tolist()
    assert not np.allclose(windows.user_vectors_, prefixes.user_vectors_)
    assert make_model("GRU4Rec", every_prefix=True).get_params()["every_prefix"] is True
    # BERT4Rec: the max_len items ending at every step (the step's item last, where the mask always goes)
    bert = BERT4Rec(max_len=4, every_prefix=True)
    windows, same = bert._examples(user_sequences(train))
    assert windows is same and len(windows) == train.nnz - train.n_users
    first = user_sequences(train)[0] + 1
    assert windows[0].tolist() == [0, 0, *first[:2]] and windows[3].tolist() == first[1:5].tolist()


# ---------------------------------------------------------------------- BERT4Rec: masking and inference
def test_bert4rec_masks_items_and_always_the_last_one() -> None:
    import torch

    model = BERT4Rec(mask_prob=0.5, max_len=6)
    model.n_items_ = 9  # the [MASK] token is n_items + 1 = 10 in the item + 1 encoding
    seq = torch.tensor([[0, 0, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]] * 50)
    inputs, targets = model._batch(seq, seq.clone(), np.random.default_rng(0))
    masked = inputs == 10
    assert masked[:, -1].all() and not masked[seq == 0].any() and (inputs[seq == 0] == 0).all()
    assert (targets[masked] == seq[masked]).all() and (targets[~masked] == 0).all()
    assert (inputs[~masked] == seq[~masked]).all()
    rate = float(masked[:, :-1][seq[:, :-1] > 0].float().mean())
    assert 0.4 < rate < 0.6  # mask_prob of the other items
    none = BERT4Rec(mask_prob=0.0, max_len=6)
    none.n_items_ = 9
    assert (none._batch(seq, seq.clone(), np.random.default_rng(0))[0] == 10).sum() == len(seq)  # the last only


def test_bert4rec_scores_the_masked_position_after_the_last_items_and_reads_both_directions() -> None:
    import torch

    train, _ = walk_data()
    model = bert4rec(epochs=5, max_len=8).fit(train)
    n = N_ITEMS
    inputs = model._net_input(model.sequences_[:3])
    assert inputs.shape == (3, 8) and (inputs[:, -1] == n + 1).all()
    np.testing.assert_array_equal(inputs[:, :-1], model.sequences_[:3, 1:])  # the last max_len - 1 items
    net = model._network()
    with torch.no_grad():
        table = net.table(None)
        hidden = net(torch.from_numpy(inputs), table)
        np.testing.assert_allclose(model.user_vectors_[:3], hidden[:, -1].numpy(), rtol=1e-5, atol=1e-5)
        # the output bias is the item vectors' last column, matched by a constant 1 in the user vectors
        assert model.item_vectors_.shape == (n, 33) and np.all(model.user_vectors_[:, -1] == 1)
        np.testing.assert_allclose(model.item_vectors_[:, -1], net.out_bias[1 : n + 1].numpy())
        # bidirectional: changing the last item moves the hidden state of the first position (SASRec's is causal)
        other = inputs.copy()
        other[:, -2] = other[:, -2] % n + 1
        moved = net(torch.from_numpy(other), table)
        assert not torch.allclose(hidden[:, -8], moved[:, -8])
    causal = sasrec(epochs=1, max_len=8).fit(train)
    seq = causal.sequences_[:3].copy()
    net = causal._network()
    with torch.no_grad():
        table = net.table(None)
        changed = seq.copy()
        changed[:, -1] = changed[:, -1] % n + 1
        a, b = net(torch.from_numpy(seq), table), net(torch.from_numpy(changed), table)
        torch.testing.assert_close(a[:, :-1], b[:, :-1])
