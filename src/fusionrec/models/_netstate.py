"""Torch-network weights kept as numpy arrays and persisted as learned state (no pickle), shared by the deep models."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from fusionrec.models.base import Recommender

__all__ = ["NetStateRecommender"]


class NetStateRecommender(Recommender):
    """A recommender whose network weights live in ``_net_arrays`` (torch state-dict key -> array).

    They are saved as learned state under ``<_net_prefix><torch key>_`` and, on load, put back into
    ``_net_arrays`` with the network itself (``_net``) rebuilt lazily by the model.
    """

    _net_prefix: ClassVar[str]

    def _get_state(self) -> dict[str, Any]:
        state = super()._get_state()
        for key, value in getattr(self, "_net_arrays", {}).items():
            state[f"{self._net_prefix}{key}_"] = value
        return state

    def _set_state(self, state: dict[str, Any]) -> None:
        prefix = self._net_prefix
        arrays = {k[len(prefix) : -1]: np.asarray(v) for k, v in state.items() if k.startswith(prefix)}
        super()._set_state({k: v for k, v in state.items() if not k.startswith(prefix)})
        self._net_arrays = arrays
        self._net: Any = None
