"""The Split container shared by every splitting strategy and by predefined split files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fusionrec.data.interactions import Interactions
from fusionrec.errors import DataError

__all__ = ["Split"]


@dataclass(frozen=True, eq=False)
class Split:
    """Train / validation / test interactions over the same id maps.

    ``valid`` is ``None`` for two-way splits.  ``cold`` names what is held out cold
    (``"items"``, ``"users"`` or ``None``); cold test rows index items (users) that have
    no training interaction.
    """

    train: Interactions
    test: Interactions
    valid: Interactions | None = None
    name: str = ""
    cold: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for part in (self.test, self.valid):
            if part is None:
                continue
            if part.user_ids is not self.train.user_ids and part.user_ids != self.train.user_ids:
                raise DataError("split parts must share the train user IdMap")
            if part.item_ids is not self.train.item_ids and part.item_ids != self.train.item_ids:
                raise DataError("split parts must share the train item IdMap")

    def summary(self) -> dict[str, int]:
        """Interactions per part: ``{"train": n, "test": n[, "valid": n]}``."""
        out = {"train": self.train.nnz, "test": self.test.nnz}
        if self.valid is not None:
            out["valid"] = self.valid.nnz
        return out
