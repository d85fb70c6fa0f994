"""``Recommender.forget_user``: forget that forgets, for every registered model (ensembles included).

The suite fits each model (``tests/models/recipes.py``), records what the saved files could hold of user
:data:`~recipes.FORGET_USER` -- its raw id, its entries along every user axis of every learned array (members too;
found by the array's shape, not by the declaration under test) and its history (six items in a distinctive,
non-monotone time order) -- then ``forget_user`` and ``save``, and searches every file of the saved directory
(manifests, every array of every ``arrays.npz``, ensembles' member directories) for any of them.  Other users keep
their indices and scores; a forgotten user's raw id is refused, also after loading.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from fusionrec.errors import ConfigError, UnknownIdError
from fusionrec.models import Recommender, load_model

from . import recipes
from .recipes import FORGET_HISTORY, FORGET_RAW, FORGET_USER

pytest.importorskip("torch")

#: models whose other users are scored through their user neighbours (the forgotten user stops being one)
THROUGH_USERS = {"UserKNN"}
#: models whose scores depend on the user index itself (no data: two forgotten users are not scored alike)
SCORED_BY_INDEX = {"Random"}
#: the search looks for any run of this many consecutive items of the history (distinctive, non-monotone)
RUN = 4


# ---------------------------------------------------------------------------------------------- the search
@dataclass
class Trace:
    """What the saved files may hold of one user."""

    raw_id: str
    #: the user's non-trivial entries along a user axis: (where, vector), searched in every array
    rows: list[tuple[str, np.ndarray]] = field(default_factory=list)
    #: the user's scalar entries of 1-d per-user arrays: (bundle-relative dir, array name, value)
    scalars: list[tuple[str, str, Any]] = field(default_factory=list)
    #: the history in time order (item indices), searched as a contiguous run of any integer array
    history: tuple[int, ...] = ()


def _dense(value: Any) -> np.ndarray | None:
    if sp.issparse(value):
        return np.asarray(value.toarray())
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf" and value.ndim >= 1:
        return value
    return None


def _slices(array: np.ndarray, n: int) -> list[tuple[int, int]]:
    """``(axis, length of the slice)`` for each axis of ``array`` with ``n`` entries."""
    return [(ax, int(array.size // n)) for ax in range(min(array.ndim, 2)) if array.shape[ax] == n]


def _unique(array: np.ndarray, axis: int, user: int) -> bool:
    """Whether ``user``'s slice along ``axis`` is no other user's (a profile row shared by several users, say, is
    not the user's to search for)."""
    flat = np.moveaxis(array, axis, 0).reshape(array.shape[axis], -1).astype(np.float64)
    same = np.isclose(flat, flat[user], rtol=1e-5, atol=1e-7).all(axis=1)
    return int(same.sum()) == 1


def _members(model: Recommender) -> list[Recommender]:
    """The fitted models an ensemble holds (found by type, not by the declaration)."""
    out = []
    for value in vars(model).values():
        items = value if isinstance(value, list | tuple) else [value]
        if items and all(isinstance(v, Recommender) for v in items):
            out.extend(items)
    return out


def trace(model: Recommender, user: int, raw_id: str, history: tuple[int, ...], where: str = ".") -> Trace:
    """Record ``user``'s raw id, entries and history in ``model`` (and its members) before forgetting."""
    found = Trace(raw_id=raw_id, history=history)
    n = int(model.n_users_)
    for name, value in model._get_state().items():
        array = _dense(value)
        if array is None:
            continue
        for axis, _ in _slices(array, n):
            entry = np.take(array, user, axis=axis)
            if entry.ndim == 0:
                if array.ndim == 1 and entry.item() != 0:
                    found.scalars.append((where, name, entry.item()))
                continue
            vector = entry.ravel()
            if vector.size >= 2 and np.ptp(vector.astype(np.float64)) > 1e-6 and _unique(array, axis, user):
                found.rows.append((f"{where}/{name} axis {axis}", vector))
    for k, member in enumerate(_members(model)):
        sub = trace(member, user, raw_id, history, where=f"{where}/member{k}")
        found.rows += sub.rows
        found.scalars += sub.scalars
    return found


def _saved_arrays(directory: Path) -> dict[str, np.ndarray]:
    """The arrays of one saved model directory, sparse matrices put back together (dense)."""
    manifest = json.loads((directory / "manifest.json").read_text())
    with np.load(directory / "arrays.npz", allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    for key in manifest.get("sparse", []):
        parts = [arrays.pop(f"{key}.{p}", None) for p in ("data", "indices", "indptr", "shape")]
        if all(p is not None for p in parts):
            data, indices, indptr, shape = parts
            arrays[key] = sp.csr_matrix((data, indices, indptr), shape=tuple(int(s) for s in shape)).toarray()
    return arrays


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [str(k), *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def _matches(array: np.ndarray, vector: np.ndarray) -> bool:
    """Whether ``vector`` is a slice of ``array`` along some axis (rows and columns of 2-d arrays; float values
    with tolerance)."""
    if array.dtype.kind not in "biuf" or array.size < vector.size:
        return False
    views = [array.reshape(1, -1)] if array.ndim == 1 else [array.reshape(array.shape[0], -1)]
    if array.ndim >= 2:
        views.append(array.reshape(-1, array.shape[-1]).T)
    for view in views:
        if view.shape[1] != vector.size:
            continue
        if array.dtype.kind == "f" or vector.dtype.kind == "f":
            hit = np.isclose(view.astype(np.float64), vector.astype(np.float64), rtol=1e-5, atol=1e-7).all(axis=1)
        else:
            hit = (view == vector).all(axis=1)
        if hit.any():
            return True
    return False


def _holds_run(array: np.ndarray, run: np.ndarray) -> bool:
    """Whether the integer ``array`` holds ``run`` contiguously, row-major or column-major."""
    if array.dtype.kind not in "iu" or array.size < run.size:
        return False
    for flat in {id(a): a for a in (array.ravel(order="C"), array.ravel(order="F"))}.values():
        windows = np.lib.stride_tricks.sliding_window_view(flat, run.size)
        if (windows == run).all(axis=1).any():
            return True
    return False


def leaks(path: Path, found: Trace) -> list[str]:
    """The raw id, entries and history of ``found`` that the saved directory ``path`` (member directories
    included) still holds, anywhere."""
    out = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path)
        if file.suffix == ".json":
            if any(found.raw_id in s for s in _strings(json.loads(file.read_text()))):
                out.append(f"raw id in {rel}")
        elif file.suffix != ".npz" and found.raw_id.encode() in file.read_bytes():
            out.append(f"raw id in {rel}")
    runs = []
    history = np.asarray(found.history, dtype=np.int64)
    for start in range(len(history) - RUN + 1):  # any RUN consecutive items (models keep the last max_len)
        for offset in (0, 1):  # sequence models store item + 1 (0 pads)
            run = history[start : start + RUN] + offset
            runs += [run, run[::-1]]
    for manifest in sorted(path.rglob("manifest.json")):
        directory = manifest.parent
        rel = directory.relative_to(path).as_posix()
        arrays = _saved_arrays(directory)
        for name, array in arrays.items():
            if array.dtype.kind in "US" and any(found.raw_id in str(v) for v in array.ravel().tolist()):
                out.append(f"raw id in {rel}/{name}")
            for where, vector in found.rows:
                if _matches(array, vector):
                    out.append(f"the user's entries of {where} in {rel}/{name}")
            if found.history and any(_holds_run(array, run) for run in runs):
                out.append(f"the user's history in {rel}/{name}")
    return out


def _member_dir(where: str) -> str:
    """``./member0/member1`` (trace) -> ``members/00/members/01`` (an ensemble's saved layout)."""
    parts = [p for p in where.split("/") if p not in (".", "")]
    return "/".join(f"members/{int(p.removeprefix('member')):02d}" for p in parts) or "."


def _scalar_leaks(path: Path, found: Trace, user: int) -> list[str]:
    out = []
    for where, name, value in found.scalars:
        directory = path / _member_dir(where)
        if not (directory / "manifest.json").exists():
            continue
        saved = _saved_arrays(directory).get(name)
        if saved is not None and saved.ndim == 1 and user < len(saved) and saved[user] == value:
            out.append(f"the user's entry {value!r} of {_member_dir(where)}/{name}")
    return out


def search(path: Path, found: Trace, user: int = FORGET_USER) -> list[str]:
    """All leaks: raw id, entries along user axes, 1-d per-user entries and history."""
    return leaks(path, found) + _scalar_leaks(path, found, user)


# ---------------------------------------------------------------------------------------------- every model
@pytest.mark.parametrize("name", recipes.registered())
def test_forget_leaves_nothing_of_the_user_in_the_saved_files(name: str, tmp_path: Path) -> None:
    model = recipes.fit(name)
    u = FORGET_USER
    found = trace(model, u, FORGET_RAW, FORGET_HISTORY)
    kept = search(model.save(tmp_path / "before"), found)
    assert any("raw id" in k for k in kept) and any("entries" in k for k in kept), kept  # the search sees the user
    others = np.setdiff1d(np.arange(model.n_users_), [0, u])
    before = np.asarray(model.score(others))
    other_raw = model.user_id_values_[others[:3]].tolist()

    model.forget_user(u)
    model.forget_user(np.int64(0))
    model.forget_user(u)  # twice: a no-op
    path = model.save(tmp_path / "after")

    left = search(path, found)
    assert not left, (
        f"{name} still holds forgotten user {u} after forget_user + save: {left}; declare the arrays in the class's "
        f"user_state (fusionrec.models.declaration) so that forget_user blanks them"
    )
    assert model.n_users_ == recipes.N_USERS  # the others keep their indices
    assert model.seen_[u].nnz == 0 and model.seen_[0].nnz == 0
    # nothing of their own data is left: the two forgotten users are scored alike
    if name not in SCORED_BY_INDEX:
        np.testing.assert_allclose(model.score(np.array([u])), model.score(np.array([0])), rtol=1e-5, atol=1e-5)
    if name not in THROUGH_USERS:
        np.testing.assert_allclose(model.score(others), before, rtol=1e-5, atol=1e-5)
    loaded = load_model(path)
    assert loaded.forgotten_users_.tolist() == [0, u]
    for m in (model, loaded):
        with pytest.raises(UnknownIdError):
            m.recommend_ids([FORGET_RAW], k=3)
        m.recommend_ids(other_raw, k=3)  # the others are still found by their raw ids
    np.testing.assert_allclose(loaded.score(others), model.score(others), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------- the search fails
def _undeclare(monkeypatch: pytest.MonkeyPatch, cls: type, *names: str) -> None:
    """``cls``'s declaration without ``names`` in its user state (the old, name-guessing behaviour's gaps)."""
    decl = cls.declaration()
    assert set(names) <= set(decl.user_state), f"{cls.__name__} does not declare {names}: nothing to take away"
    state = {k: v for k, v in decl.user_state.items() if k not in names}
    monkeypatch.setattr(cls, "_declaration", dataclasses.replace(decl, user_state=state))


def test_the_search_finds_a_history_left_in_a_sequence_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """GRU4Rec as it was: ``sequences_`` not blanked, so the saved arrays held the user's last items in order."""
    model = recipes.fit("GRU4Rec")
    found = trace(model, FORGET_USER, FORGET_RAW, FORGET_HISTORY)
    _undeclare(monkeypatch, type(model), "sequences_")
    model.forget_user(FORGET_USER)
    left = search(model.save(tmp_path / "m"), found)
    assert "the user's history in ./sequences_" in left, left
    assert any(k.startswith("the user's entries of ./sequences_") for k in left), left


def test_the_search_finds_factors_and_scalars_left(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A rating model whose user factors and biases are not blanked: found (a copy under another name too)."""
    model = recipes.fit("SVD")
    model.shadow_rows_ = np.ascontiguousarray(model.user_factors_.T)  # stored transposed under another name
    found = trace(model, FORGET_USER, FORGET_RAW, FORGET_HISTORY)
    _undeclare(monkeypatch, type(model), "user_factors_", "user_bias_")
    model.forget_user(FORGET_USER)
    left = search(model.save(tmp_path / "m"), found)
    assert any("of ./user_factors_ axis 0 in ./user_factors_" in k for k in left), left
    assert any("in ./shadow_rows_" in k for k in left), left
    assert any(k.startswith("the user's entry") and k.endswith("./user_bias_") for k in left), left


def test_the_search_reaches_ensemble_members(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model = recipes.fit("Stacking")
    found = trace(model, FORGET_USER, FORGET_RAW, FORGET_HISTORY)
    als = next(m for m in _members(model) if type(m).__name__ == "ALS")
    _undeclare(monkeypatch, type(als), "user_factors_")
    model.forget_user(FORGET_USER)
    left = search(model.save(tmp_path / "m"), found)
    assert any(k.endswith("/user_factors_") and "members/" in k for k in left), left


def test_the_search_finds_a_raw_id(tmp_path: Path) -> None:
    model = recipes.fit("MostPopular")
    found = trace(model, FORGET_USER, FORGET_RAW, FORGET_HISTORY)
    assert "raw id in ./user_id_values_" in search(model.save(tmp_path / "m"), found)


# ---------------------------------------------------------------------------------------------- details
def test_a_forgotten_user_is_no_ones_neighbour() -> None:
    model = recipes.fit("UserKNN")
    model.forget_user(3)
    nb = sp.csr_matrix(model.neighbours_)
    assert nb[:, 3].nnz == 0 and nb[3].nnz == 0


def test_the_forgotten_tombstone_is_no_id() -> None:
    model = recipes.fit("EASE")
    model.forget_user(5)
    tomb = model.user_id_values_[5]
    with pytest.raises(UnknownIdError):
        model.recommend_ids([tomb], k=3)


def test_bad_user_index_is_refused() -> None:
    model = recipes.fitted("EASE")
    for bad in (-1, model.n_users_, True, "u1", 1.0):
        with pytest.raises(ConfigError, match="user index"):
            model.forget_user(bad)


def test_item_item_state_is_kept_when_users_and_items_are_as_many() -> None:
    from fusionrec.data import Interactions
    from fusionrec.models.knn import ItemKNN

    n = 20
    pairs = [(u, (u + d) % n) for u in range(n) for d in (0, 1, 3, 7 + u % 5)]
    users = np.array([f"u{u}" for u, _ in pairs])
    items = np.array([f"i{i}" for _, i in pairs])
    train = Interactions.from_arrays(users, items, None, explicit=False)
    assert train.n_users == train.n_items  # a square item-item matrix must not pass for users x users
    model = ItemKNN().fit(train)
    assert model.neighbours_.shape == (n, n)  # sparse, items x items
    others = np.arange(1, train.n_users)
    before = model.score(others)
    model.forget_user(0)
    np.testing.assert_allclose(model.score(others), before, rtol=1e-6)
