"""benchmarks/mmrec_peers.py's wall-clock budget: a worker still training at ``--budget-s`` is stopped by SIGTERM
and the setting it was training is kept (its best valid epoch so far), and a setting stopped after a few epochs is
told apart from a result (it goes to the table's "not in the table" list, not into a row).

The worker here is a stand-in for MMRec's (no .bench environment is needed): it trains "forever" and writes its log
entry when SIGTERM arrives, as the real worker does.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import mmrec_peers

FAKE_WORKER = """#!{python}
import json, signal, sys, time
from pathlib import Path
job = json.loads(Path(sys.argv[-1]).read_text())
def stop(signum, frame):
    entry = {{"setting": {{"n_layers": 1}}, "valid NDCG@20 (MMRec)": 0.03, "best_epoch": 30, "epochs_run": 41,
             "seconds": 1.0, "stopped_by_deadline": True}}
    (Path(job["out"]) / (job["model"] + "_log.json")).write_text(json.dumps([entry]))
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
time.sleep(120)
"""


def test_budget_stops_the_worker_and_keeps_its_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "python"
    fake.write_text(FAKE_WORKER.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setattr(mmrec_peers, "WORK", tmp_path)
    args = argparse.Namespace(resume="", reuse=False, epochs=100, stopping_step=20, threads=1, quick=True,
                              mmrec_python=str(fake), budget_s=1.5)  # fmt: skip
    t0 = time.perf_counter()
    run = mmrec_peers.run_mmrec("BM3", args)
    assert time.perf_counter() - t0 < 60, "the budget did not stop the worker"
    (entry,) = run["log"]
    assert entry["stopped_by_deadline"] and entry["epochs_run"] == 41
    assert mmrec_peers.counts(entry, stopping_step=20)  # 41 epochs under patience 20: a result, marked as stopped
    assert not mmrec_peers.counts({**entry, "epochs_run": 2}, stopping_step=20)  # a timing run is not
    assert mmrec_peers.counts({**entry, "epochs_run": 2, "stopped_by_deadline": False}, stopping_step=20)
