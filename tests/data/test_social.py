"""Trust datasets: FilmTrust duplicates are never dropped silently; trust-only users extend the user map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import DataWarning, IdMap
from fusionrec.data.datasets import build_social, load_filmtrust, load_trust_dataset
from fusionrec.errors import (
    ConfigError,
    DataError,
    DatasetNotFoundError,
    DuplicateInteractionError,
    EmptyDataError,
    InvalidValueError,
)


def write_filmtrust(root: Path, dup: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = ["1 1 2", "1 2 4", "2 1 3.5", "3 2 1"] + (["1 2 3"] if dup else [])
    (root / "ratings.txt").write_text("\n".join(lines) + "\n")
    # user 9 never rated; 2 -> 9 and 9 -> 1
    (root / "trust.txt").write_text(" 1 2 1\n2 9 1\n9 1 1\n")
    return root


def test_filmtrust_duplicates_raise_with_hint(tmp_path: Path) -> None:
    root = write_filmtrust(tmp_path / "ft")
    with pytest.raises(DuplicateInteractionError, match=r"1 duplicate.*duplicates='last'.*duplicates='mean'"):
        load_filmtrust(root, duplicates="raise")


def test_filmtrust_loads_as_shipped_with_its_stated_rule(tmp_path: Path) -> None:
    """The default applies the dataset's rule (the later line wins), counted in meta, with no warning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load_filmtrust(write_filmtrust(tmp_path / "ft"))
    x = ds.interactions
    assert x.matrix[x.user_ids.to_index(1), x.item_ids.to_index(2)] == pytest.approx(3.0)
    assert ds.meta["duplicates_merged"] == 1 and x.nnz == 4


@pytest.mark.parametrize(("rule", "value"), [("last", 3.0), ("mean", 3.5)])
def test_filmtrust_duplicates_merged_with_warning(tmp_path: Path, rule: str, value: float) -> None:
    root = write_filmtrust(tmp_path / "ft")
    with pytest.warns(DataWarning, match=r"merged 1 duplicate"):
        ds = load_filmtrust(root, duplicates=rule)  # type: ignore[arg-type]
    x = ds.interactions
    u, i = x.user_ids.to_index(1), x.item_ids.to_index(2)
    assert x.matrix[u, i] == pytest.approx(value)
    assert x.nnz == 4


def test_trust_only_users_extend_map(tmp_path: Path) -> None:
    ds = load_filmtrust(write_filmtrust(tmp_path / "ft", dup=False))
    assert ds.user_ids.ids.tolist() == [1, 2, 3, 9]  # rating users sorted, then trust-only users
    assert ds.meta["trust_only_users"] == 1 and ds.meta["rating_users"] == 3
    s = ds.social
    assert s is not None and s.shape == (4, 4) and s.nnz == 3
    idx = ds.user_ids.to_index
    assert s[idx(2), idx(9)] == 1 and s[idx(9), idx(1)] == 1 and s[idx(1), idx(2)] == 1
    assert ds.interactions.user_counts()[idx(9)] == 0


def test_trust_dataset_ciao_like_columns(tmp_path: Path) -> None:
    ratings = tmp_path / "rating.txt"
    ratings.write_text("u1\ti1\tbooks\t4\t3\t100\nu2\ti1\tbooks\t2\t1\t200\nu2\ti2\tfood\t5\t2\t300\n")
    trust = tmp_path / "trustnetwork.txt"
    trust.write_text("u1\tu2\nu2\tu1\nu3\tu1\nu3\tu1\n")
    with pytest.warns(DataWarning, match="repeated social link"):
        ds = load_trust_dataset(
            ratings,
            trust,
            name="ciao",
            rating_columns=("user", "item", "category", "rating", "helpfulness", "timestamp"),
            trust_columns=("trustor", "trustee"),
        )
    assert ds.interactions.timestamps is not None and ds.interactions.matrix.data.tolist() == [4.0, 2.0, 5.0]
    assert ds.user_ids.ids.tolist() == ["u1", "u2", "u3"] and ds.social.nnz == 3  # type: ignore[union-attr]


def test_epinions_signed_trust(tmp_path: Path) -> None:
    (tmp_path / "r.txt").write_text("1 10 5\n2 10 1\n")
    (tmp_path / "t.txt").write_text("1 2 1\n2 1 -1\n")
    ds = load_trust_dataset(tmp_path / "r.txt", tmp_path / "t.txt")
    assert ds.social is not None and sorted(ds.social.data.tolist()) == [-1.0, 1.0]


def test_trust_bad_input(tmp_path: Path) -> None:
    root = write_filmtrust(tmp_path / "ft", dup=False)
    (root / "ratings.txt").write_text("1 1 2\n1 2 x\n")
    with pytest.raises(InvalidValueError, match=r"ratings.txt, line 2: 'rating'"):
        load_filmtrust(root)
    (root / "ratings.txt").write_text("1 1 2\n1 2\n")
    with pytest.raises(DataError, match=r"line 2: the 'rating' field is missing"):
        load_filmtrust(root)
    (root / "ratings.txt").write_text("")
    with pytest.raises(EmptyDataError):
        load_filmtrust(root)
    (root / "ratings.txt").write_text("1 1 2\n")
    (root / "trust.txt").write_text("1 2 yes\n")
    with pytest.raises(InvalidValueError, match=r"trust.txt, line 1: 'trust'"):
        load_filmtrust(root)
    (root / "trust.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"lacks trust\.txt"):
        load_filmtrust(root)
    with pytest.raises(ConfigError, match="rating"):
        load_trust_dataset(root / "ratings.txt", root / "ratings.txt", rating_columns=("user", "item"))


def test_build_social_rules() -> None:
    users = IdMap(["a", "b", "c"])
    with pytest.warns(DataWarning):
        s = build_social(["a", "a", "b"], ["b", "b", "c"], users, [1.0, 3.0, 2.0], duplicates="sum")
    assert s[0, 1] == 4.0 and s[1, 2] == 2.0
    s = build_social(["a"], ["c"], users)
    assert s.dtype == np.float32 and s.shape == (3, 3) and s.nnz == 1


@pytest.mark.slow
@pytest.mark.realdata
def test_filmtrust_real(data_dir: Path) -> None:
    with pytest.raises(DuplicateInteractionError, match="3 duplicate"):
        load_filmtrust(data_dir / "filmtrust", duplicates="raise")
    assert load_filmtrust(data_dir / "filmtrust").meta["duplicates_merged"] == 3  # loads as shipped, rule stated
    with pytest.warns(DataWarning, match="merged 3 duplicate"):
        ds = load_filmtrust(data_dir / "filmtrust", duplicates="mean")
    x = ds.interactions
    assert x.nnz == 35497 - 3 and x.n_items == 2071
    assert ds.meta["rating_users"] == 1508
    assert int((x.user_counts() > 0).sum()) == 1508
    assert ds.meta["trust_rows"] == 1806 and ds.social is not None and ds.social.nnz == 1806
    assert ds.meta["trust_users"] == 861
    assert x.n_users == 1508 + ds.meta["trust_only_users"]


@pytest.mark.parametrize("weight", [1e40, float("nan"), float("inf")])
def test_build_social_refuses_weights_float32_cannot_hold(weight: float) -> None:
    """A link weight of 1e40 would be stored as inf (a numpy warning before): a typed error naming the link."""
    import warnings

    ids = IdMap(["a", "b", "c"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InvalidValueError, match=r"1 social link weight.* at row 1 of the links"):
            build_social(["a", "b"], ["b", "c"], ids, [1.0, weight])
