"""`fusionrec train --model DPMF` reports the privacy spent (issue 13)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fusionrec.cli.main import app

pytest.importorskip("opacus", reason="private training needs the privacy extra: pip install 'fusionrec[privacy]'")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_train_private_prints_epsilon_and_plain_training_does_not(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = ["user,item"] + [f"u{u},i{i}" for u in range(40) for i in rng.choice(30, 6, replace=False)]
    (tmp_path / "log.csv").write_text("\n".join(rows) + "\n")
    log = str(tmp_path / "log.csv")
    out = CliRunner().invoke(
        app,
        ["train", "--interactions", log, "--model", "DPMF", "-p", "target_epsilon=3", "-p", "epochs=2", "-p", "batch_size=32",
         "--out", str(tmp_path / "dp")],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    found = re.search(r"epsilon ([0-9.]+), delta ([0-9.e-]+)", out.output)
    assert found is not None, out.output
    assert 0 < float(found.group(1)) <= 3.0 + 1e-6 and 0 < float(found.group(2)) < 1 / 240
    plain = CliRunner().invoke(app, ["train", "--interactions", log, "--model", "BPR", "--out", str(tmp_path / "b")])
    assert plain.exit_code == 0, plain.output
    assert "epsilon" not in plain.output
