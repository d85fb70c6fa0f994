"""Fitting never changes what the caller passed in, for every registered model and recipe.

The contract data is shared by every test of a worker (``recipes.contract_data`` is cached), as a user's dataset is
shared by every model of an experiment: a model that binarised the training matrix in place (a ``csr_matrix(m,
dtype=...)`` view of the caller's data, then ``.data[:] = 1``) turned every later model's ratings into ones, and
186 unrelated contract tests failed far from the cause.  This test names the model instead.
"""

from __future__ import annotations

import numpy as np
import pytest

from . import recipes

pytest.importorskip("torch")


def _snapshot(data: recipes.ContractData) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for label, inter in (("train", data.train), ("untimed", data.untimed)):
        m = inter.matrix
        out[f"{label}.data"] = m.data.copy()
        out[f"{label}.indices"] = m.indices.copy()
        out[f"{label}.indptr"] = m.indptr.copy()
        if inter.timestamps is not None:
            out[f"{label}.timestamps"] = np.asarray(inter.timestamps).copy()
    for name, feats in data.side.item_features.items():
        out[f"side.item.{name}"] = np.array(feats, copy=True)
    for name, feats in data.side.user_features.items():
        out[f"side.user.{name}"] = np.array(feats, copy=True)
    out["texts"] = np.asarray(data.texts, dtype=object).copy()
    out["images"] = np.asarray([str(i) for i in data.images], dtype=object)
    return out


@pytest.mark.parametrize("case", recipes.variants(), ids=lambda c: f"{c[0]}-{c[1]}")
@pytest.mark.parametrize("timed", [True, False], ids=["timed", "untimed"])
def test_fit_leaves_the_training_data_and_side_information_unchanged(case: tuple[str, int], timed: bool) -> None:
    name, variant = case
    data = recipes.contract_data()
    before = _snapshot(data)
    recipes.fit(name, variant, timed=timed)
    after = _snapshot(data)
    changed = [
        key
        for key in before
        if before[key].shape != after[key].shape or not np.array_equal(before[key], after[key])
    ]
    assert not changed, f"{name} (recipe {variant}) changed the caller's {changed} while fitting; work on a copy"
