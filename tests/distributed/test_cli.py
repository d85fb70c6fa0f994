"""``fusionrec batch ... --ray`` and ``fusionrec features extract ... --ray`` from the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from tests.conftest import make_interactions


def test_batch_and_extract_commands(ray_cluster: str, tmp_path: Path) -> None:
    from fusionrec.cli.main import app
    from fusionrec.models.linear import EASE
    from fusionrec.serving.bundle import save_bundle

    train = make_interactions(80, 30, seed=2, explicit=False)
    bundle = save_bundle(tmp_path / "b", EASE(reg=10.0).fit(train), train)
    (tmp_path / "users.txt").write_text("u3\nu1\n")
    runner = CliRunner()
    out = tmp_path / "top.parquet"
    args = ["batch", str(bundle), "--out", str(out), "-k", "4", "--users", str(tmp_path / "users.txt")]
    res = runner.invoke(app, [*args, "--ray", ray_cluster])
    assert res.exit_code == 0, res.output
    frame = pd.read_parquet(out)
    assert frame["user"].tolist() == ["u3"] * 4 + ["u1"] * 4 and "8 rows for 2 users" in res.output
    res = runner.invoke(app, ["batch", str(bundle), "--out", str(tmp_path / "all.parquet")])  # in process
    assert res.exit_code == 0 and pd.read_parquet(tmp_path / "all.parquet")["user"].nunique() == 80
    (tmp_path / "users.txt").write_text("ghost\n")
    res = runner.invoke(app, args)
    assert res.exit_code != 0 and "ghost" in res.output

    docs = []
    for j in range(5):
        p = tmp_path / f"doc{j}.txt"
        p.write_text(f"words {j} shared text {'x' * j}")
        docs.append(str(p))
    npy = tmp_path / "f.npy"
    res = runner.invoke(app, ["features", "extract", *docs, "-o", str(npy), "--ray", ray_cluster, "--no-cache"])
    assert res.exit_code == 0, res.output
    ref = tmp_path / "ref.npy"
    assert runner.invoke(app, ["features", "extract", *docs, "-o", str(ref), "--no-cache"]).exit_code == 0
    np.testing.assert_array_equal(np.load(npy), np.load(ref))
    assert "5 items: 0 cached, 5 computed" in res.output
