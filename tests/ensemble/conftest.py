from __future__ import annotations

import pytest

from fusionrec.models import registry


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Until registry.py names the ensembles (requested), register them for the test."""
    monkeypatch.setitem(registry.MODELS, "WeightedBlend", "fusionrec.ensemble.blend:WeightedBlend")
    monkeypatch.setitem(registry.MODELS, "Stacking", "fusionrec.ensemble.stacking:Stacking")
