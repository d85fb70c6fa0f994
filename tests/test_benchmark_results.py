"""benchmarks/_common.write_results: benchmarks that finish at the same time keep each other's RESULTS.md sections.

Several processes rewrite their own sections of the one file at once; without the lock around the read-modify-write
a process writes back a text read before another's write and that section is lost.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"

WRITER = """
import sys
sys.path.insert(0, {bench!r})
import _common
for round_ in range(12):
    _common.write_results({name!r} + "_" + str(round_ % 3), [], metric_columns=[], title="t", command="c",
                          notes="x" * 20000)
"""


def test_concurrent_writers_lose_no_section(tmp_path):
    env = {**os.environ, "FUSIONREC_BENCH_OUT": str(tmp_path)}
    names = [f"w{k}" for k in range(6)]
    procs = [subprocess.Popen([sys.executable, "-c", WRITER.format(bench=str(BENCH), name=n)], env=env) for n in names]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    text = (tmp_path / "RESULTS.md").read_text()
    for n in names:
        for r in range(3):
            assert text.count(f"<!-- begin {n}_{r} -->") == 1, f"section {n}_{r} lost or doubled"
    assert not list(tmp_path.glob(".RESULTS.md.*.tmp"))
