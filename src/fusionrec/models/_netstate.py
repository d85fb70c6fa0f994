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
    #: the live torch module (``None``: rebuilt from ``_net_arrays`` when next needed)
    _net: Any
    _net_arrays: dict[str, np.ndarray]

    def _get_state(self) -> dict[str, Any]:
        state = super()._get_state()
        for key, value in getattr(self, "_net_arrays", {}).items():
            state[f"{self._net_prefix}{key}_"] = value
        return state

    def _learned(self, name: str) -> Any:
        prefix = self._net_prefix
        if name.startswith(prefix) and name.endswith("_"):
            return getattr(self, "_net_arrays", {}).get(name[len(prefix) : -1])
        return super()._learned(name)

    def _set_learned(self, name: str, value: Any) -> None:
        prefix = self._net_prefix
        if name.startswith(prefix) and name.endswith("_"):
            # a new dict (copies share the old one) and the network rebuilt from the arrays when next needed
            self._net_arrays = {**getattr(self, "_net_arrays", {}), name[len(prefix) : -1]: value}
            self._net = None
            return
        super()._set_learned(name, value)

    def _set_state(self, state: dict[str, Any]) -> None:
        prefix = self._net_prefix
        arrays = {k[len(prefix) : -1]: np.asarray(v) for k, v in state.items() if k.startswith(prefix)}
        super()._set_state({k: v for k, v in state.items() if not k.startswith(prefix)})
        self._net_arrays = arrays
        self._net = None
