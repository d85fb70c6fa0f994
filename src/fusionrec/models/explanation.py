"""The records and pure helpers that models' explanation hooks return (models layer).

:class:`ScoreParts` is what a ``score_parts`` hook returns; :func:`shapley_parts` turns coalition values into one.
They live in the models layer so that models never import :mod:`fusionrec.explain` (a layer above them);
:mod:`fusionrec.explain` re-exports them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fusionrec.errors import ConfigError

__all__ = ["MAX_SHAPLEY_PLAYERS", "ScoreParts", "shapley_parts", "shapley_values"]

#: at most this many modalities for Shapley attributions (``2^M`` evaluations)
MAX_SHAPLEY_PLAYERS = 10


@dataclass
class ScoreParts:
    """An additive attribution of one score: ``sum(parts.values()) == score``.

    ``parts`` maps a part name (a modality name, ``"collaborative"`` for the item-identity / id-embedding part,
    ``"baseline"`` for what no modality explains) to its value.  ``method`` is ``"exact"`` (the score is a sum
    of per-modality terms) or ``"shapley"`` (Shapley values over modalities, masking absent ones);
    ``baseline`` says what the ``"baseline"`` part is.
    """

    parts: dict[str, float]
    method: str
    baseline: str = ""

    @property
    def total(self) -> float:
        return float(math.fsum(self.parts.values()))

    def shares(self) -> dict[str, float]:
        """Each non-baseline part as a fraction of the sum of their absolute values (signs kept)."""
        rest = {k: v for k, v in self.parts.items() if k != "baseline"}
        denom = math.fsum(abs(v) for v in rest.values())
        return {k: (v / denom if denom > 0 else 0.0) for k, v in rest.items()}


def shapley_values(values: np.ndarray, n_players: int) -> np.ndarray:
    """Exact Shapley values from a coalition game ``values[mask]`` (bit ``m`` of ``mask`` = player ``m`` in).

    ``values`` has ``2^M`` entries; the result ``phi [M]`` satisfies ``phi.sum() == values[-1] - values[0]``
    (efficiency), and a player whose presence never changes the value gets 0.
    """
    values = np.asarray(values, dtype=np.float64)
    m = int(n_players)
    if values.shape != (1 << m,):
        raise ConfigError(f"values must hold 2^{m} = {1 << m} coalition values, got shape {values.shape}")
    weight = [math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) for s in range(m)]
    phi = np.zeros(m)
    for mask in range(1 << m):
        size = bin(mask).count("1")
        for p in range(m):
            if not mask >> p & 1:
                phi[p] += weight[size] * (values[mask | 1 << p] - values[mask])
    return phi


def shapley_parts(
    values: np.ndarray, names: Sequence[str], baseline: str, baseline_name: str = "baseline"
) -> ScoreParts:
    """:class:`ScoreParts` from coalition values: ``baseline_name`` = ``values[0]`` (the empty coalition; name it
    ``"collaborative"`` when that is the behaviour-only model) plus one Shapley value per name."""
    phi = shapley_values(values, len(names))
    parts = {baseline_name: float(values[0])}
    parts.update({str(name): float(v) for name, v in zip(names, phi)})
    return ScoreParts(parts, "shapley", baseline)
