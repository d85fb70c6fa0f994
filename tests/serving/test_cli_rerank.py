"""`fusionrec recommend --rerank`: the serving re-rankers from the command line (issue 13)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fusionrec.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """EASE on a log whose items carry genres: items 0-11 Drama, 12-17 Comedy; the users mostly like Drama."""
    root = tmp_path_factory.mktemp("rerank")
    rows = ["user,item,rating"]
    rng = np.random.default_rng(0)
    for u in range(40):
        likes = list(rng.choice(12, 5, replace=False)) + ([12 + u % 6] if u % 8 == 0 else [])
        rows += [f"u{u},i{i},1" for i in likes]
    (root / "log.csv").write_text("\n".join(rows) + "\n")
    items = ["item,title,genres"] + [f"i{i},Film {i},{'Drama' if i < 12 else 'Comedy'}" for i in range(18)]
    (root / "items.csv").write_text("\n".join(items) + "\n")
    from fusionrec.serving.cli import train_bundle

    files = {"interactions": root / "log.csv", "items": root / "items.csv"}
    return train_bundle(None, "EASE", root / "b", files=files, params={"reg": 1.0})


def _items(out: object) -> list[str]:
    assert out.exit_code == 0, out.output  # type: ignore[attr-defined]
    return [r["item"] for r in json.loads(out.output)["items"]]  # type: ignore[attr-defined]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_max_share_caps_the_genre_share(bundle: Path) -> None:
    plain = _items(runner.invoke(app, ["recommend", str(bundle), "--user", "u1", "-k", "4", "--json"]))
    capped = _items(
        runner.invoke(
            app, ["recommend", str(bundle), "--user", "u1", "-k", "4", "--json", "--rerank", '{"max_share": 0.5}']
        )
    )
    drama = {f"i{i}" for i in range(12)}
    assert sum(i in drama for i in plain) > 2  # the model alone fills the list with Drama
    assert sum(i in drama for i in capped) <= 2 and len(capped) == 4
    assert [i for i in plain if i in capped][:2] == [i for i in capped if i in drama][:2]  # best Drama kept


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_bad_rerank_spec_is_one_line(bundle: Path) -> None:
    for spec, words in (("calibrate", "JSON object"), ('{"colour": 1}', "unknown rerank option")):
        out = runner.invoke(app, ["recommend", str(bundle), "--user", "u1", "--rerank", spec])
        assert out.exit_code != 0
        assert words in out.output and "Traceback" not in out.output
