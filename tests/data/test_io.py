from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fusionrec.data import load_split_file, read_interactions, split_from_frame
from fusionrec.errors import DataError, DatasetNotFoundError, EmptyDataError, MissingColumnError


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "userId": [1, 1, 1, 2, 2, 3],
            "movieId": [10, 11, 12, 10, 13, 11],
            "rating": [4.0, 3.0, 5.0, 2.0, 4.0, 1.0],
            "timestamp": [1, 2, 3, 4, 5, 6],
            "x_label": [0, 1, 2, 0, 2, 0],
        }
    )


def test_split_file_shares_id_maps(tmp_path: Path) -> None:
    p = tmp_path / "toy.random811.csv"
    _frame().to_csv(p, index=False)
    s = load_split_file(p)
    assert s.name == "toy.random811"
    assert s.summary() == {"train": 3, "valid": 1, "test": 2}
    assert s.train.user_ids is s.test.user_ids and s.train.item_ids is s.test.item_ids
    # item 13 appears only in test: it exists in the map with no train rows (a cold item)
    j = s.train.item_ids.to_index(13)
    assert s.train.item_counts()[j] == 0 and s.test.item_counts()[j] == 1


def test_parquet_roundtrip(tmp_path: Path) -> None:
    p = tmp_path / "x.parquet"
    _frame().drop(columns="x_label").to_parquet(p)
    x = read_interactions(p)
    assert x.nnz == 6 and x.timestamps is not None


def test_split_labels_as_words_and_bad_labels() -> None:
    f = _frame()
    f["x_label"] = ["train", "valid", "test", "train", "test", "train"]
    assert split_from_frame(f).test.nnz == 2
    f["x_label"] = [0, 1, 2, 0, 7, 0]
    with pytest.raises(DataError, match="outside 0/1/2"):
        split_from_frame(f)
    with pytest.raises(MissingColumnError, match="x_label"):
        split_from_frame(f.drop(columns="x_label"))


def test_unknown_ids_in_split_against_given_maps() -> None:
    from fusionrec.data import IdMap
    from fusionrec.errors import UnknownIdError

    with pytest.raises(UnknownIdError):
        split_from_frame(_frame(), user_ids=IdMap([1, 2]))


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError):
        read_interactions(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(EmptyDataError):
        read_interactions(empty)
    header = tmp_path / "header.csv"
    header.write_text("user,item,rating\n")
    with pytest.raises(EmptyDataError):
        read_interactions(header)


@pytest.mark.realdata
def test_real_split_files(data_dir: Path) -> None:
    s = load_split_file(data_dir / "splits" / "ml-latest-small.random811.csv")
    assert s.summary() == {"train": 80650, "valid": 10093, "test": 10093}
    assert s.train.shape == (610, 9724)
    s = load_split_file(data_dir / "splits" / "ml-100k.random811.csv")
    assert s.train.nnz + s.valid.nnz + s.test.nnz == 100_000  # type: ignore[union-attr]
    assert s.train.shape == (943, 1682)


def test_read_table_formats_and_errors(tmp_path: Path) -> None:
    import gzip

    from fusionrec.data import read_table

    frame = _frame().drop(columns="x_label")
    with gzip.open(tmp_path / "x.jsonl.gz", "wt") as fh:
        frame.to_json(fh, orient="records", lines=True)
    frame.to_json(tmp_path / "x.json", orient="records")
    frame.to_csv(tmp_path / "x.txt", sep="|", index=False)
    frame.to_csv(tmp_path / "x.tsv.gz", sep="\t", index=False)
    for name in ("x.jsonl.gz", "x.json", "x.txt", "x.tsv.gz"):
        got = read_table(tmp_path / name)
        assert list(got.columns) == list(frame.columns) and len(got) == 6, name
    assert read_table(frame) is frame
    (tmp_path / "ids.jsonl").write_text('{"user": "0012", "item": 1}\n')
    assert read_table(tmp_path / "ids.jsonl")["user"].tolist() == ["0012"]  # JSON values as written
    (tmp_path / "x.xls").write_text("user,item\n1,2\n")
    with pytest.raises(DataError, match="unknown table format"):
        read_table(tmp_path / "x.xls")
    with pytest.raises(DataError, match="is a folder"):
        read_table(tmp_path)
    with pytest.raises(EmptyDataError):
        read_table(frame.iloc[:0])
    (tmp_path / "bad.jsonl").write_text('{"user": 1\n')
    with pytest.raises(DataError, match="could not be parsed as jsonl"):
        read_table(tmp_path / "bad.jsonl")


def test_split_labels_written_as_floats() -> None:
    """A label column that went through a float writer (0.0 / 1.0 / 2.0) is a valid split (issue 11)."""
    f = _frame()
    f["x_label"] = f["x_label"].astype(float)
    assert split_from_frame(f).summary() == {"train": 3, "valid": 1, "test": 2}
    f["x_label"] = ["0.0", "1.0", "2.0", "0", "2", "0"]  # the same, read back as text
    assert split_from_frame(f).summary() == {"train": 3, "valid": 1, "test": 2}


@pytest.mark.parametrize(("bad", "match"), [(0.5, "not a whole number, e.g. row 4: 0.5"), (float("nan"), "missing")])
def test_split_labels_other_floats_are_named(bad: float, match: str) -> None:
    f = _frame()
    f["x_label"] = [0.0, 1.0, 2.0, 0.0, bad, 0.0]
    with pytest.raises(DataError, match=match):
        split_from_frame(f)
