"""Output a person can read: the display title of a catalogue whose items carry long texts (reviews) is a short
column (or the one named with ``--title-column``), and titles are cut to a line wherever they are shown."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fusionrec.data import from_files
from fusionrec.errors import ConfigError
from fusionrec.serving.bundle import item_meta_from_dataset
from fusionrec.serving.rules import MAX_TITLE_CHARS, shorten_text

WORDS = [
    "quiet",
    "harbour",
    "lantern",
    "storm",
    "cedar",
    "river",
    "velvet",
    "signal",
    "orbit",
    "meadow",
    "copper",
    "willow",
    "ember",
    "tide",
]


def _catalogue(tmp_path: Path, *, with_name: bool) -> tuple[Path, Path]:
    """Interactions and an item table whose first text column is a long review (about 600 characters)."""
    rng = np.random.default_rng(0)
    items = [f"i{j}" for j in range(30)]
    table = {"item": items, "review": [" ".join(rng.choice(WORDS, size=90)) for _ in items]}
    table["tagline"] = [f"{WORDS[j % len(WORDS)]} {WORDS[(3 * j + 1) % len(WORDS)]} number {j}" for j in range(30)]
    if with_name:
        table["name"] = [f"Item {j}" for j in range(30)]
    pd.DataFrame(table).to_csv(tmp_path / "items.csv", index=False)
    pairs = {(f"u{u}", items[int(rng.integers(30))]) for u in range(40) for _ in range(6)}
    pd.DataFrame(sorted(pairs), columns=["user", "item"]).to_csv(tmp_path / "interactions.csv", index=False)
    return tmp_path / "interactions.csv", tmp_path / "items.csv"


def test_shorten_text_cuts_at_a_word_with_an_ellipsis() -> None:
    assert shorten_text("a short title") == "a short title"
    assert shorten_text("  two\n lines\t") == "two lines"
    long = " ".join(["harbour"] * 40)
    out = shorten_text(long)
    assert len(out) <= MAX_TITLE_CHARS and out.endswith("…") and out[:-1].split() == ["harbour"] * len(out.split())


def test_title_is_a_short_text_column_never_the_review(tmp_path: Path) -> None:
    """Without a title/name column the shortest text column names the items (the first text column is a review)."""
    log, items = _catalogue(tmp_path, with_name=False)
    ds = from_files(log, items=items, item_types={"review": "text", "tagline": "text"})
    assert next(iter(ds.item_modalities)) == "review"  # the review comes first in the file
    titles = item_meta_from_dataset(ds)["title"]
    taglines = dict(zip(pd.read_csv(items)["item"], pd.read_csv(items)["tagline"], strict=True))
    assert titles == [taglines[i] for i in ds.item_ids.ids]


def test_title_prefers_a_name_column_and_obeys_title_column(tmp_path: Path) -> None:
    log, items = _catalogue(tmp_path, with_name=True)
    ds = from_files(log, items=items, item_types={"review": "text", "tagline": "text", "name": "text"})
    assert item_meta_from_dataset(ds)["title"][0].startswith("Item ")
    chosen = item_meta_from_dataset(ds, title_column="review")["title"]
    assert all(0 < len(t) <= MAX_TITLE_CHARS and t.endswith("…") for t in chosen)
    with pytest.raises(ConfigError, match="title"):
        item_meta_from_dataset(ds, title_column="nope")


def test_cli_recommend_prints_a_short_table(tmp_path: Path) -> None:
    """``fusionrec train`` on a review catalogue then ``recommend``: a few lines, no review text in them."""
    from fusionrec.cli.main import app

    log, items = _catalogue(tmp_path, with_name=False)
    runner = CliRunner()
    bundle = tmp_path / "bundle"
    common = ["--interactions", str(log), "--items", str(items), "--model", "MostPopular", "--out", str(bundle)]
    kinds = ["--column-type", "review=text", "--column-type", "tagline=text"]
    res = runner.invoke(app, ["train", *common, *kinds])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["recommend", str(bundle), "--user", "u1", "-k", "5"])
    assert res.exit_code == 0, res.output
    assert len(res.output) < 2000 and res.output.count("\n") < 25, res.output
    review_words = pd.read_csv(items)["review"].iloc[0].split()[:12]
    assert " ".join(review_words) not in res.output
    res = runner.invoke(app, ["train", *common, *kinds, "--title-column", "review"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["recommend", str(bundle), "--user", "u1", "-k", "5"])
    assert "…" in res.output and len(res.output) < 3000, res.output


@pytest.mark.filterwarnings("ignore::fusionrec.data.interactions.DataWarning")  # the constant column is reported as ignored
def test_cli_train_says_what_it_read(tmp_path: Path) -> None:
    """``fusionrec train`` prints the interactions it read, each content column's role and encoder, and every
    ignored column with the reason, before ``bundle written``."""
    from fusionrec.cli.main import app

    log, items = _catalogue(tmp_path, with_name=True)
    table = pd.read_csv(items)
    table["shop"] = "the same shop"  # constant: ignored, and said so
    table.to_csv(items, index=False)
    runner = CliRunner()
    args = ["train", "--interactions", str(log), "--items", str(items), "--model", "CEASE", "--out", str(tmp_path / "b")]
    res = runner.invoke(app, [*args, "--column-type", "review=text"])
    assert res.exit_code == 0, res.output
    out = res.output
    assert f"read {log}:" in out and "40 users, 30 items" in out
    assert "review: text -> TfidfEncoder" in out and "dims" in out
    assert "shop: ignored (constant" in out
    assert out.index("read ") < out.index("bundle written")
