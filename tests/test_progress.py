"""The progress switch of the Python API (issue 14): fusionrec.set_progress / progress_enabled / verbose=, and one
bar (with ETA) over a chunked job instead of one per chunk."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import fusionrec
from fusionrec import _progress


@pytest.fixture
def bars(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every bar drawn (rich's track and Progress tasks) by description."""
    drawn: list[str] = []
    import rich.progress

    def track(iterable: Any, total: Any = None, description: str = "", **_kw: Any) -> Iterator[Any]:
        drawn.append(description)
        yield from iterable

    real_add = rich.progress.Progress.add_task

    def add_task(self: Any, description: str, *a: Any, **kw: Any) -> Any:
        drawn.append(description)
        return real_add(self, description, *a, **kw)

    monkeypatch.setattr(rich.progress, "track", track)
    monkeypatch.setattr(rich.progress.Progress, "add_task", add_task)
    monkeypatch.setattr(_progress, "_ENABLED", False)
    return drawn


def test_off_by_default_and_switchable(bars: list[str]) -> None:
    assert list(_progress.progress(range(3), desc="a")) == [0, 1, 2]
    assert bars == []
    fusionrec.set_progress(True)
    try:
        list(_progress.progress(range(3), desc="b"))
    finally:
        fusionrec.set_progress(False)
    assert bars == ["b"]
    with fusionrec.progress_enabled():
        list(_progress.progress(range(2), desc="c"))
    with fusionrec.progress_enabled(False):
        list(_progress.progress(range(2), desc="d"))
    assert bars == ["b", "c"] and not _progress.progress_on()


def test_loops_inside_a_bar_draw_no_bar_of_their_own(bars: list[str]) -> None:
    with fusionrec.progress_enabled():
        with _progress.overall(6, "encoding") as advance:
            for _chunk in range(3):
                list(_progress.progress(range(4), desc="batches of one chunk"))
                advance(2)
        list(_progress.progress(range(2), desc="outer"))
        for _ in _progress.progress(range(2), desc="epochs"):
            list(_progress.progress(range(2), desc="inner"))
    assert bars == ["encoding", "outer", "epochs"]


def test_the_feature_cache_shows_one_bar_over_all_chunks(bars: list[str], tmp_path: Any) -> None:
    from fusionrec.data import IdMap, Modality
    from fusionrec.features.cache import FeatureCache
    from fusionrec.features.pipeline import encode_modality
    from fusionrec.features.text import TfidfEncoder

    enc = TfidfEncoder()
    texts = [f"movie number {i} about topic {i % 7}" for i in range(50)]
    mod = Modality("text", IdMap(np.arange(50)), texts)
    _feats, report = encode_modality(mod, enc, cache=FeatureCache(tmp_path, chunk_size=8), verbose=True)
    assert report.n_computed == 50
    assert bars == [f"encoding {enc.name}"]  # one bar, not one per chunk of 8
    bars.clear()
    encode_modality(mod, TfidfEncoder(), cache=FeatureCache(tmp_path / "b", chunk_size=8))
    assert bars == []  # verbose=None keeps the process-wide setting (off)


def test_run_experiment_verbose_restores_the_setting(bars: list[str]) -> None:
    from fusionrec.evaluation.experiment import ExperimentConfig, run_experiment

    cfg = ExperimentConfig.from_dict(
        {"dataset": {"name": "synthetic", "params": {"n_users": 60, "n_items": 40}}, "split": "random",
         "models": [{"name": "ALS", "params": {"epochs": 2, "n_factors": 4}}], "significance": False}
    )  # fmt: skip
    run_experiment(cfg, verbose=True)
    assert "ALS" in bars and not _progress.progress_on()
