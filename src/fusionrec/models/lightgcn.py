"""LightGCN (He et al., SIGIR 2020) under its own name: the baseline every multimodal table carries.

``E = mean_{l=0..L} A_hat^l E^0`` over the user-item graph ``A_hat = D^-1/2 [[0, R], [R^T, 0]] D^-1/2``, scores
``s_ui = E_u . E_i``, trained with BPR plus L2 on the ego embeddings of each triple.  The propagation, the BPR loop and
the fold-in are :class:`~fusionrec.models.graph.GraphFusion`'s with no item content graph (one implementation of the
graph training); this class exposes only the parameters LightGCN has and declares that it reads no content (so it
cannot place a new item from content: ``can_add_items`` is False).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from fusionrec.models._params import NONNEGATIVE, POSITIVE, POSITIVE_INT, SEED, Interval
from fusionrec.models.base import SideInfo
from fusionrec.models.graph import GraphFusion

__all__ = ["LightGCN"]


class LightGCN(GraphFusion):
    """LightGCN: linear propagation on the user-item graph, trained with BPR (see the module docstring).

    Parameters
    ----------
    n_factors
        Embedding width ``f``.
    layers
        Propagation layers ``L`` in ``[0, 6]`` (0 is BPR-MF with LightGCN's loss; the paper uses 1-4, deeper
        graphs over-smooth).
    reg
        L2 weight on the ego embeddings of each BPR triple (divided by the batch size).
    edge_dropout
        Share of user-item edges dropped each epoch, degree-sensitively (0 = off).
    epochs, batch_size, lr
        Adam optimisation over BPR triples (one per training interaction and epoch).
    seed
        Seeds initialisation, negative sampling and dropout (the fit is reproducible).
    threads
        torch intra-op threads during fit (restored afterwards).

    Attributes
    ----------
    user_factors_ ``[U, f]``, item_factors_ ``[I, f]``
        Final (propagated) vectors; ``score = user_factors_ @ item_factors_.T`` through :class:`Factors`.
    item_ego_ ``[I, f]``
        The items' ego embeddings (zero for items without a training interaction).
    warm_ ``[I]``
        Whether the item had a training interaction (the items BPR samples negatives from).
    """

    _search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "n_factors": ("int", 16, 128, "log"),
        "layers": ("int", 1, 4),
        "lr": ("float", 1e-4, 1e-2, "log"),
        "reg": ("float", 1e-6, 1e-2, "log"),
        "epochs": ("int", 10, 100),
    }

    # declaration (fusionrec.models.declaration): GraphFusion's state (factors, item_ego_, warm_, an empty
    # item_features_), but no content: no side information, no modality parameter, no add_items
    uses_side_info = False
    modality_param: ClassVar[str | None] = None
    can_add_items: ClassVar[bool] = False
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        **{name: [*POSITIVE_INT] for name in ("n_factors", "epochs", "batch_size", "threads")},
        # deeper propagation over-smooths: at 30 layers every user gets the same top-10 (tests/models/test_param_ranges)
        "layers": [Interval(int, 0, 6)],
        "reg": [*NONNEGATIVE],
        "edge_dropout": [Interval(float, 0.0, 1.0, closed="left")],
        "lr": [*POSITIVE],
        "seed": [*SEED],
    }
    # GraphFusion's content parameters, fixed (not parameters of LightGCN): no item graphs are built
    modalities = None
    item_layers = 0
    knn_k = 1
    learn_weights = False

    def __init__(
        self,
        *,
        n_factors: int = 64,
        layers: int = 3,
        reg: float = 1e-4,
        edge_dropout: float = 0.0,
        epochs: int = 30,
        batch_size: int = 2048,
        lr: float = 5e-3,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        self.n_factors = n_factors
        self.layers = layers
        self.reg = reg
        self.edge_dropout = edge_dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self.threads = threads

    @classmethod
    def param_constraints(cls) -> dict[str, list[Any]]:
        """The merged constraints of LightGCN's own parameters (GraphFusion's content parameters are not ours)."""
        names = set(cls.param_names())
        return {k: v for k, v in super().param_constraints().items() if k in names}

    def _graphs(self, side: SideInfo | None, n_items: int) -> tuple[list[str], list[sp.csr_matrix], list[np.ndarray]]:
        return [], [], []

    #: LightGCN reads no content, so it cannot place a new item before the item has interactions: GraphFusion's
    #: add_items (content neighbours) is switched off, as the declaration (can_add_items False) says
    add_items = None  # type: ignore[assignment]
