"""DeepFusion: per-modality towers + item/user id embeddings, a fusion layer and a rating or ranking head.

Shapes: ``U`` users, ``I`` items, ``B`` a batch, ``M`` fused inputs (the item-id embedding, one per dense
modality, the learned text tower), ``D`` the tower width, ``V`` the item-vector width (``D``, or ``M * D``
for late fusion).

The item vector ``v_i = fuse(h_i^1 .. h_i^M, mask_i) [V]`` does not depend on the user, so the score is

``s_ui = p_u . v_i + b_u + b_i + mu``,  ``b_i = m_i^id beta_i + w . v_i``

with ``p_u [V]`` a user embedding, ``beta_i`` a per-item bias used only for items seen in training, and
``w . v_i`` a content bias.  Items with no training interaction (cold items, items added later) have
their id input masked (``m_i^id = 0``), so they are scored from their content towers alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from fusionrec._progress import progress
from fusionrec._ranking import mask_rows, topk
from fusionrec._similarity import normalize_rows
from fusionrec.data.interactions import Interactions
from fusionrec.errors import ConfigError, DataError, NotFittedError
from fusionrec.models._netstate import NetStateRecommender
from fusionrec.models._params import (
    BOOL,
    MODALITY_NAMES,
    NONNEGATIVE,
    NONNEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    SEED,
    Interval,
    Options,
)
from fusionrec.models.base import SideInfo
from fusionrec.models.declaration import ROWS, Indexed
from fusionrec.models.factors import FactorMixin, FactorSpec
from fusionrec.models.fusion.layers import FUSIONS, make_fusion
from fusionrec.models.fusion.towers import (
    TEXT_ENCODERS,
    DenseTower,
    DenseTowerConfig,
    TextTower,
    TextTowerConfig,
    hash_tokenize,
)
from fusionrec.models.graph import torch_threads
from fusionrec.models.private import PRIVACY_PARAMS, PrivacyReport

if TYPE_CHECKING:
    from fusionrec.models.explanation import ScoreParts

__all__ = ["DeepFusion", "FusionNet", "FusionNetConfig"]

_LOSSES = ("mse", "bce", "bpr")
_NET = "net."
ID = "id"
TEXT = "text_tower"


@dataclass(frozen=True)
class FusionNetConfig:
    """Everything needed to rebuild a :class:`FusionNet` (its weights come separately)."""

    n_users: int
    n_items: int
    dim: int
    dense: tuple[tuple[str, int], ...]
    fusion: str = "attention"
    item_ids: bool = True
    hidden: int = 64
    dropout: float = 0.0
    text: TextTowerConfig | None = None

    @property
    def inputs(self) -> list[str]:
        """Names of the fused inputs, in order."""
        return [ID] * self.item_ids + [name for name, _ in self.dense] + [TEXT] * (self.text is not None)

    @property
    def vector_dim(self) -> int:
        return self.dim * len(self.inputs) if self.fusion == "late" else self.dim


class FusionNet(nn.Module):
    """Towers + fusion + biases; :meth:`item_vectors` gives ``(v [B, V], b [B])`` and users are embeddings."""

    def __init__(self, config: FusionNetConfig) -> None:
        super().__init__()
        self.config = config
        d, v = config.dim, config.vector_dim
        self.user_emb = nn.Embedding(config.n_users, v)
        self.user_bias = nn.Embedding(config.n_users, 1)
        self.item_bias = nn.Embedding(config.n_items, 1)
        self.global_bias = nn.Parameter(torch.zeros(1))
        self.content_bias = nn.Linear(v, 1, bias=False)
        nn.init.normal_(self.user_emb.weight, std=0.1)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)
        nn.init.zeros_(self.content_bias.weight)
        self.item_emb: nn.Embedding | None = None
        if config.item_ids:
            self.item_emb = nn.Embedding(config.n_items, d)
            nn.init.normal_(self.item_emb.weight, std=0.1)
        self.towers = nn.ModuleDict(
            {name: DenseTower(DenseTowerConfig(f, d, config.hidden, config.dropout)) for name, f in config.dense}
        )
        self.text = TextTower(config.text) if config.text is not None else None
        self.fusion = make_fusion(config.fusion, len(config.inputs), d)

    def item_vectors(
        self,
        items: torch.Tensor,
        dense: dict[str, torch.Tensor],
        tokens: torch.Tensor | None,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Item vectors and biases.

        ``items int64 [B]`` (ids; any value when the id input is masked), ``dense[name] [B, F]``,
        ``tokens int64 [B, L]``, ``mask [B, M]`` -> ``(v [B, V], b [B])``.
        """
        hs = []
        if self.item_emb is not None:
            hs.append(self.item_emb(items.clamp_max(self.config.n_items - 1)))
        for name, _ in self.config.dense:
            hs.append(self.towers[name](dense[name]))
        if self.text is not None and tokens is not None:
            hs.append(self.text(tokens))
        h = torch.stack(hs, dim=1)  # [B, M, D]
        vec = self.fusion(h, mask)
        bias = self.content_bias(vec).squeeze(-1)
        if self.item_emb is not None:
            bias = bias + self.item_bias(items.clamp_max(self.config.n_items - 1)).squeeze(-1) * mask[:, 0]
        return vec, bias

    def forward(self, users: torch.Tensor, vec: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Pairwise scores ``s_j = p_{u_j} . v_j + b_{u_j} + b_j + mu`` for ``users [B]``, ``vec [B, V]``."""
        p = self.user_emb(users)
        return (p * vec).sum(-1) + self.user_bias(users).squeeze(-1) + bias + self.global_bias


class DeepFusion(PrivacyReport, FactorMixin, NetStateRecommender):
    """Deep multimodal fusion network for ratings or top-N ranking.

    Each dense modality of ``SideInfo.item_features`` (rows L2-normalised) passes through its own MLP
    tower; optionally raw item texts pass through a learned CNN / LSTM / CNN+LSTM tower over hashed word
    ids; the item-id embedding is one more input.  A fusion layer combines the ``M`` inputs (``"concat"``
    early fusion, ``"gated"``, ``"attention"`` over the modality vectors, or ``"late"``: per-modality
    scores summed with learned weights) into ``v_i`` and ``s_ui = p_u . v_i + b_u + b_i + mu`` (see the
    module docstring).  Missing modality rows (``item_present[name]`` False) are masked out.

    Losses: ``"mse"`` on the observed values (rating prediction), ``"bce"`` (observed = 1 against
    ``negatives`` uniformly sampled training items = 0) or ``"bpr"`` (``-log sigmoid(s_ui - s_uj)`` with one
    sampled negative).  Adam with L2 weight decay ``reg``.  With a ``valid`` Interactions, training keeps the
    epoch with the best validation RMSE (mse) or Recall@``valid_k`` (ranking losses) and stops after
    ``patience`` epochs without improvement.

    Parameters
    ----------
    modalities
        Item feature names to use (default: all, sorted); ``[]`` gives a behaviour-only model.
    fusion
        ``"concat"``, ``"gated"``, ``"attention"`` (default) or ``"late"``.
    item_ids
        Use item-id embeddings (False: content only).
    n_factors, hidden, dropout
        Tower width ``D`` (formerly ``dim``), MLP hidden width, dropout in the towers.
    text_tower
        ``None``, ``"cnn"``, ``"lstm"`` or ``"cnn+lstm"``: learned tower over ``fit(..., texts=...)``.
    text_vocab, text_len
        Hashing vocabulary size and tokens kept per text.
    loss
        ``"bpr"`` (default), ``"bce"`` or ``"mse"``.
    negatives
        Sampled negatives per positive for ``"bce"``.
    epochs, batch_size, lr, reg
        Adam optimisation; ``reg`` is its L2 weight decay (formerly ``weight_decay``; the old names still work with
        a ``FutureWarning``).
    patience, valid_k
        Early stopping (used only when ``fit`` gets ``valid``).
    seed
        Seeds the initial weights, shuffling and negative sampling (the fit is reproducible).
    threads
        torch intra-op threads during fit (restored afterwards).  Small models train fastest on one thread,
        and on a shared machine more threads oversubscribe the cores (20x slower measured on 2 busy cores).
    private, target_epsilon, delta, max_grad_norm, noise_multiplier, accountant
        ``private=True`` trains by DP-SGD (:mod:`fusionrec.models.private`: record-level (epsilon, delta)-DP,
        per-record clipping to ``max_grad_norm``, noise calibrated by Opacus to ``target_epsilon`` at ``delta``
        (default ``1 / (10 n)``), or a fixed ``noise_multiplier``), for exactly ``epochs`` epochs (``valid`` is
        only recorded), negatives drawn over all items and every item treated as warm.

    Attributes
    ----------
    user_factors_ ``[U, V]``, user_bias_ ``[U]``, item_vectors_ ``[I, V]``, item_bias_ ``[I]``, global_bias_
        What :meth:`score` uses: ``user_factors_ @ item_vectors_.T + biases``.
    valid_history_
        Validation metric after each epoch (empty without ``valid``); ``best_epoch_`` the kept one.
    privacy_spent_
        ``(epsilon, delta)`` of a private fit (``(inf, 0.0)`` otherwise).
    """

    #: tuning ranges (:mod:`fusionrec.tuning`): name -> (kind, low, high[, "log"]) or ("categorical", [choices])
    _search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "n_factors": ("int", 16, 128, "log"),
        "hidden": ("int", 32, 256, "log"),
        "dropout": ("float", 0.0, 0.5),
        "lr": ("float", 1e-4, 1e-2, "log"),
        "reg": ("float", 1e-7, 1e-3, "log"),
        "fusion": ("categorical", ["concat", "gated", "attention", "late"]),
    }

    _net_prefix = _NET

    # declaration (fusionrec.models.declaration); the factor_spec arrays (user_factors_, user_bias_, item_vectors_,
    # item_bias_) are declared by it.  The network's user tables are per-user state too (forget_user blanks them and
    # the network is rebuilt from the arrays); its item tables have a row per item seen at fit (``n_fit_items_``).
    user_state: ClassVar[dict[str, Indexed]] = {"net.user_emb.weight_": ROWS, "net.user_bias.weight_": ROWS}
    item_state: ClassVar[dict[str, Indexed]] = {
        "item_mask_": ROWS,
        "tokens_": ROWS,
        "net.item_emb.weight_": ROWS,
        "net.item_bias.weight_": ROWS,
    }
    modality_param: ClassVar[str | None] = "modalities"
    fit_inputs: ClassVar[frozenset[str]] = frozenset({"valid", "texts"})
    can_add_items: ClassVar[bool] = True
    explanation_hooks: ClassVar[frozenset[str]] = frozenset({"score_parts"})
    _renamed_params: ClassVar[dict[str, str]] = {"dim": "n_factors", "weight_decay": "reg"}

    uses_side_info = True
    #: scores ``user_factors_ . item_vectors_ + user_bias_ + item_bias_ + global_bias_``; the user side is an
    #: embedding table, so there is no fold-in of new users (refit)
    factor_spec = FactorSpec(
        user="user_factors_", item="item_vectors_", user_bias="user_bias_", item_bias="item_bias_",
        global_bias="global_bias_",
    )  # fmt: skip
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "modalities": [*MODALITY_NAMES],
        "fusion": [Options(tuple(FUSIONS))],
        "item_ids": [*BOOL],
        **{
            name: [*POSITIVE_INT]
            for name in (
                "n_factors",
                "hidden",
                "epochs",
                "batch_size",
                "negatives",
                "valid_k",
                "text_vocab",
                "text_len",
                "threads",
            )
        },
        "dropout": [Interval(float, 0.0, 1.0, closed="left")],
        "text_tower": [Options(tuple(TEXT_ENCODERS)), None],
        "loss": [Options(_LOSSES)],
        "lr": [*POSITIVE],
        "reg": [*NONNEGATIVE],
        "patience": [*NONNEGATIVE_INT],
        "seed": [*SEED],
        **PRIVACY_PARAMS,
    }

    def __init__(
        self,
        *,
        modalities: list[str] | None = None,
        fusion: str = "attention",
        item_ids: bool = True,
        n_factors: int = 32,
        hidden: int = 64,
        dropout: float = 0.0,
        text_tower: str | None = None,
        text_vocab: int = 4096,
        text_len: int = 48,
        loss: str = "bpr",
        negatives: int = 4,
        epochs: int = 20,
        batch_size: int = 512,
        lr: float = 5e-3,
        reg: float = 1e-5,
        patience: int = 3,
        valid_k: int = 20,
        seed: int = 0,
        threads: int = 1,
        private: bool = False,
        target_epsilon: float | None = None,
        delta: float | None = None,
        max_grad_norm: float = 1.0,
        noise_multiplier: float | None = None,
        accountant: str = "rdp",
    ) -> None:
        self.modalities = modalities
        self.fusion = fusion
        self.item_ids = item_ids
        self.n_factors = n_factors
        self.hidden = hidden
        self.dropout = dropout
        self.text_tower = text_tower
        self.text_vocab = text_vocab
        self.text_len = text_len
        self.loss = loss
        self.negatives = negatives
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.reg = reg
        self.patience = patience
        self.valid_k = valid_k
        self.seed = seed
        self.threads = threads
        self.private = private
        self.target_epsilon = target_epsilon
        self.delta = delta
        self.max_grad_norm = max_grad_norm
        self.noise_multiplier = noise_multiplier
        self.accountant = accountant

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        train: Interactions,
        side: SideInfo | None = None,
        valid: Interactions | None = None,
        texts: Sequence[str | None] | None = None,
    ) -> Self:
        """Learn from ``train``; ``valid`` enables early stopping; ``texts`` (one per item) feed the text tower."""
        self._valid = valid
        self._texts = texts
        try:
            return super().fit(train, side)
        finally:
            del self._valid, self._texts

    def _inputs(
        self, side: SideInfo | None, n_items: int, texts: Sequence[str | None] | None
    ) -> tuple[list[str], dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
        feats = {} if side is None else side.item_features
        names = sorted(feats) if self.modalities is None else list(self.modalities)
        dense: dict[str, np.ndarray] = {}
        present = []
        for name in names:
            if name not in feats:
                raise DataError(f"no item features {name!r}; available: {sorted(feats)}")
            x = np.asarray(feats[name], dtype=np.float32)
            if x.ndim != 2 or x.shape[0] != n_items:
                raise DataError(f"item features {name!r} must be [{n_items}, d], got {x.shape}")
            have = np.asarray(side.item_present.get(name), dtype=bool) if side and name in side.item_present else None
            ok = np.isfinite(x).all(1) & (np.abs(x).sum(1) > 0)
            if have is not None:
                ok &= have
            dense[name] = np.where(ok[:, None], normalize_rows(np.nan_to_num(x)), 0.0).astype(np.float32)
            present.append(ok)
        tokens = None
        if self.text_tower is not None:
            if texts is None:
                raise ConfigError(f"text_tower={self.text_tower!r} needs fit(train, side, texts=[one text per item])")
            if len(texts) != n_items:
                raise DataError(f"texts has {len(texts)} entries for {n_items} items")
            tokens = hash_tokenize(texts, int(self.text_vocab), int(self.text_len))
            present.append(tokens[:, 0] > 0)
        if not names and tokens is None and not self.item_ids:
            raise ConfigError("DeepFusion needs item_ids=True, at least one modality or a text tower")
        pres = np.stack(present, axis=1) if present else np.zeros((n_items, 0), dtype=bool)
        return names, dense, pres, tokens

    def _config(self, names: list[str], dims: list[int]) -> FusionNetConfig:
        text = None
        if self.text_tower is not None:
            text = TextTowerConfig(int(self.text_vocab), int(self.n_factors), encoder=self.text_tower)
        return FusionNetConfig(
            n_users=int(self.n_users_),
            n_items=int(self.n_fit_items_),
            dim=int(self.n_factors),
            dense=tuple(zip(names, dims, strict=True)),
            fusion=self.fusion,
            item_ids=bool(self.item_ids),
            hidden=int(self.hidden),
            dropout=float(self.dropout),
            text=text,
        )

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        valid, texts = self._valid, self._texts
        if valid is not None and valid.shape != train.shape:
            raise DataError(f"valid {valid.shape} must share the train id maps {train.shape} (use a Split)")
        n_items = train.n_items
        names, dense, pres, tokens = self._inputs(side, n_items, texts)
        self.n_fit_items_ = n_items
        self.modalities_ = np.array(names, dtype=str)
        self.feature_dims_ = np.array([dense[n].shape[1] for n in names], dtype=np.int64)
        warm = train.item_counts() > 0
        if self.private:  # which items have interactions is data: a private fit treats every item as warm
            warm = np.ones(n_items, dtype=bool)
        mask = np.hstack([warm[:, None], pres]) if self.item_ids else pres
        m = train.matrix.tocsr()
        rows = train.row_indices().astype(np.int64)
        cols = m.indices.astype(np.int64)
        values = m.data.astype(np.float32)
        if self.loss == "mse" and not len(values):
            raise DataError("DeepFusion needs at least one training interaction")
        warm_items = np.flatnonzero(warm)
        rng = np.random.default_rng(self.seed)

        with torch.random.fork_rng(devices=[]), torch_threads(int(self.threads)):
            torch.manual_seed(int(self.seed))
            net = FusionNet(self._config(names, [int(d) for d in self.feature_dims_]))
            if self.loss == "mse" and len(values) and not self.private:
                with torch.no_grad():
                    net.global_bias.fill_(float(values.mean()))
            opt = torch.optim.Adam(net.parameters(), lr=float(self.lr), weight_decay=float(self.reg))
            t_dense = {n: torch.from_numpy(x) for n, x in dense.items()}
            t_tokens = None if tokens is None else torch.from_numpy(tokens)
            t_mask = torch.from_numpy(mask.astype(np.float32))

            def vectors(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
                it = torch.from_numpy(idx)
                return net.item_vectors(
                    it,
                    {n: x[it] for n, x in t_dense.items()},
                    None if t_tokens is None else t_tokens[it],
                    t_mask[it],
                )

            history: list[float] = []
            best, best_state, best_epoch, bad = -np.inf, None, int(self.epochs) - 1, 0
            bs = int(self.batch_size)
            if self.private:  # DP-SGD (models/private.py): a fixed number of epochs, no early stopping
                from fusionrec.models.private import fit_fusion_private

                def after_epoch() -> float:
                    self._export(net, vectors)
                    return self._valid_metric(train, valid) if valid is not None and valid.nnz else np.nan

                history = fit_fusion_private(
                    self, net, opt, (rows, cols, values), (t_dense, t_tokens, t_mask), rng, after_epoch
                )
                history = [] if valid is None or not valid.nnz else history
            loop_epochs = 0 if self.private else int(self.epochs)
            for epoch in progress(range(loop_epochs), total=int(self.epochs), desc="DeepFusion"):
                net.train()
                order = rng.permutation(len(rows))
                for start in range(0, len(order), bs):
                    sel = order[start : start + bs]
                    u = rows[sel]
                    i = cols[sel]
                    if self.loss == "mse":
                        vec, b = vectors(i)
                        pred = net(torch.from_numpy(u), vec, b)
                        loss = ((pred - torch.from_numpy(values[sel])) ** 2).mean()
                    elif self.loss == "bpr":
                        j = warm_items[rng.integers(0, len(warm_items), size=len(sel))]
                        vec, b = vectors(np.concatenate([i, j]))
                        ut = torch.from_numpy(np.concatenate([u, u]))
                        s = net(ut, vec, b)
                        loss = -torch.nn.functional.logsigmoid(s[: len(sel)] - s[len(sel) :]).mean()
                    else:
                        k = int(self.negatives)
                        j = warm_items[rng.integers(0, len(warm_items), size=len(sel) * k)]
                        vec, b = vectors(np.concatenate([i, j]))
                        ut = torch.from_numpy(np.concatenate([u, np.repeat(u, k)]))
                        s = net(ut, vec, b)
                        target = torch.cat([torch.ones(len(sel)), torch.zeros(len(j))])
                        loss = torch.nn.functional.binary_cross_entropy_with_logits(s, target)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                if valid is not None and valid.nnz:
                    self._export(net, vectors)
                    metric = self._valid_metric(train, valid)
                    history.append(metric)
                    if metric > best + 1e-6:
                        best, best_epoch, bad = metric, epoch, 0
                        best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                    else:
                        bad += 1
                        if bad > int(self.patience):
                            break
            if best_state is not None:
                net.load_state_dict(best_state)
            self._export(net, vectors)
        self.valid_history_ = np.array(history, dtype=np.float64)
        self.best_epoch_ = int(best_epoch)
        self.item_mask_ = mask.astype(np.float32)
        self.tokens_ = tokens if tokens is not None else np.zeros((n_items, 0), dtype=np.int64)  # [I, text_len or 0]
        self._net: FusionNet | None = net
        self._net_arrays = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}

    def _export(self, net: FusionNet, vectors: Any) -> None:
        net.eval()
        with torch.no_grad():
            vecs, biases = [], []
            for start in range(0, int(self.n_fit_items_), 4096):
                v, b = vectors(np.arange(start, min(start + 4096, int(self.n_fit_items_)), dtype=np.int64))
                vecs.append(v.numpy())
                biases.append(b.numpy())
            self.item_vectors_ = np.vstack(vecs).astype(np.float32)
            self.item_bias_ = np.concatenate(biases).astype(np.float32)
            self.user_factors_ = net.user_emb.weight.detach().numpy().astype(np.float32, copy=True)
            self.user_bias_ = net.user_bias.weight.detach().numpy()[:, 0].astype(np.float32, copy=True)
            self.global_bias_ = float(net.global_bias.item())

    def _valid_metric(self, train: Interactions, valid: Interactions) -> float:
        """RMSE (negated) for ``mse``, else mean Recall@``valid_k`` of the validation items, train items masked."""
        vm = valid.matrix.tocsr()
        users = np.flatnonzero(np.diff(vm.indptr) > 0)
        if self.loss == "mse":
            r = valid.row_indices()
            pred = self.predict(r, vm.indices)
            return -float(np.sqrt(np.mean((pred - vm.data) ** 2)))
        recalls = []
        for start in range(0, len(users), 1024):
            batch = users[start : start + 1024]
            s = self.score(batch).astype(np.float32, copy=True)
            mask_rows(s, train.matrix, batch)
            idx, _ = topk(s, int(self.valid_k))
            rel = vm[batch]
            for row in range(len(batch)):
                truth = rel.indices[rel.indptr[row] : rel.indptr[row + 1]]
                recalls.append(np.isin(idx[row], truth).sum() / min(len(truth), int(self.valid_k)))
        return float(np.mean(recalls)) if recalls else 0.0

    # ------------------------------------------------------------------ scoring
    # score / predict: FactorMixin's (Factors.scores / pair_scores of factor_spec), the one factor scoring path
    def item_embeddings(self) -> np.ndarray:
        self._check_fitted()
        return self.item_vectors_

    def score_parts(self, user: int, item: int, side: SideInfo | None = None) -> ScoreParts:
        """Explanation hook (:mod:`fusionrec.explain`): the share of each fused input in ``score(user, item)``.

        Parts are named ``"collaborative"`` (the item-id embedding and its bias), the modality names and
        ``"text_tower"``, plus ``"baseline"``.  Late fusion is exact (the score is a sum of per-input dot
        products: ``(p_u^m + w^m) . v_i^m`` per input, the item-id bias in ``"collaborative"``, ``b_u + mu`` as the
        baseline; ``side`` unused).  The other fusions are not additive: Shapley values over the inputs, ``v(S)``
        the score with the inputs outside ``S`` masked (as a missing modality is), baseline ``v({})`` = every
        input masked; ``2^M`` network evaluations, and ``side`` (the fit's SideInfo) is needed to re-run the
        towers of dense modalities.
        """
        from fusionrec.models.explanation import MAX_SHAPLEY_PLAYERS, ScoreParts, shapley_parts

        self._check_fitted()
        u, i = int(user), int(item)
        inputs = [ID] * bool(self.item_ids) + self.modalities_.tolist() + [TEXT] * (self.text_tower is not None)
        labels = ["collaborative" if x == ID else str(x) for x in inputs]
        score = float(self.score(np.array([u]), np.array([i]))[0, 0])
        base = float(self.user_bias_[u]) + float(self.global_bias_)
        if self.fusion == "late":
            d = int(self.n_factors)
            w = np.asarray(self._net_arrays["content_bias.weight"], np.float64).ravel()
            p, v = self.user_factors_[u].astype(np.float64), self.item_vectors_[i].astype(np.float64)
            parts = {"baseline": base}
            for m, name in enumerate(labels):
                blk = slice(m * d, (m + 1) * d)
                parts[name] = float((p[blk] + w[blk]) @ v[blk])
            id_bias = float(self.item_bias_[i]) - float(w @ v)
            parts["collaborative" if self.item_ids else "baseline"] += id_bias
            return ScoreParts(parts, "exact", "user bias + global bias")
        if len(inputs) > MAX_SHAPLEY_PLAYERS:
            raise ConfigError(f"{len(inputs)} fused inputs: Shapley attribution is limited to {MAX_SHAPLEY_PLAYERS}")
        names = self.modalities_.tolist()
        dense: dict[str, torch.Tensor] = {}
        if names:
            if side is None:
                raise ConfigError("DeepFusion's modality attribution re-runs the content towers: pass side=")
            for name in names:
                x = np.asarray(side.item_features.get(name, np.zeros((0, 0))), np.float32)
                if i >= x.shape[0]:
                    raise ConfigError(f"side has no {name!r} row for item {i}; pass the side the model was fitted with")
                row = np.nan_to_num(x[i : i + 1])
                dense[name] = torch.from_numpy(normalize_rows(row) if np.abs(row).sum() > 0 else row)
        n_sets = 1 << len(inputs)
        bits = (np.arange(n_sets)[:, None] >> np.arange(len(inputs))[None, :]) & 1
        mask = torch.from_numpy((bits * self.item_mask_[i][None, :]).astype(np.float32))
        tokens = None
        if self.text_tower is not None:
            tokens = torch.from_numpy(np.repeat(self.tokens_[i : i + 1], n_sets, axis=0))
        net = self._network()
        with torch.no_grad():
            vec, bias = net.item_vectors(
                torch.full((n_sets,), i, dtype=torch.int64),
                {k: v.expand(n_sets, -1) for k, v in dense.items()},
                tokens,
                mask,
            )
        values = vec.numpy().astype(np.float64) @ self.user_factors_[u].astype(np.float64)
        values = values + bias.numpy().astype(np.float64) + base
        values[-1] = score  # the parts sum to the model's own score exactly
        return shapley_parts(values, labels, "every input masked (the item vector of an item with no input)")

    # ------------------------------------------------------------------ persistence
    def _set_state(self, state: dict[str, Any]) -> None:
        """Learned state; bundles saved before the declaration kept ``tokens_`` as ``[0, 0]`` without a text tower
        (now ``[I, 0]``: one empty token row per item)."""
        tokens = state.get("tokens_")
        if tokens is not None and np.shape(tokens) == (0, 0):
            state = {**state, "tokens_": np.zeros((int(state["n_items_"]), 0), dtype=np.int64)}
        super()._set_state(state)

    def _network(self) -> FusionNet:
        net = getattr(self, "_net", None)
        if net is None:
            if not getattr(self, "_net_arrays", None):
                raise NotFittedError("DeepFusion has no network weights; fit it (or load a complete bundle) first")
            net = FusionNet(self._config(self.modalities_.tolist(), [int(d) for d in self.feature_dims_]))
            net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self._net_arrays.items()})
            self._net = net
        net.eval()
        return net

    # ------------------------------------------------------------------ cold start
    def _new_item_rows(self, m: int) -> dict[str, np.ndarray]:
        return {
            "item_mask_": np.zeros((m, self.item_mask_.shape[1]), np.float32),
            "tokens_": np.zeros((m, self.tokens_.shape[1]), self.tokens_.dtype),
        }

    def add_items(self, features: dict[str, np.ndarray], texts: Sequence[str | None] | None = None) -> np.ndarray:
        """Append new items scored from their content; returns their indices.

        ``features`` maps fitted modality names to ``[m, d]`` rows (a modality left out, or an all-zero
        row, counts as missing); ``texts`` feeds the text tower when there is one.
        """
        self._check_fitted()
        names = self.modalities_.tolist()
        unknown = sorted(set(features) - set(names))
        if unknown:
            raise DataError(f"add_items got features {unknown} the model was not fitted with; fitted: {names}")
        sizes = {np.asarray(x).shape[0] for x in features.values()} | ({len(texts)} if texts is not None else set())
        if len(sizes) != 1:
            raise DataError(f"add_items needs the same number of rows in every modality, got {sorted(sizes)}")
        n_new = sizes.pop()
        dense, present = {}, []
        for name, d in zip(names, self.feature_dims_, strict=True):
            x = np.asarray(features.get(name, np.zeros((n_new, int(d)))), dtype=np.float32)
            if x.shape != (n_new, int(d)):
                raise DataError(f"add_items: {name!r} must be [{n_new}, {int(d)}], got {x.shape}")
            ok = np.isfinite(x).all(1) & (np.abs(x).sum(1) > 0)
            dense[name] = torch.from_numpy(
                np.where(ok[:, None], normalize_rows(np.nan_to_num(x)), 0.0).astype(np.float32)
            )
            present.append(ok)
        tokens = None
        tok = np.zeros((n_new, self.tokens_.shape[1]), dtype=self.tokens_.dtype)
        if self.text_tower is not None:
            tok = hash_tokenize(
                list(texts) if texts is not None else [None] * n_new, int(self.text_vocab), int(self.text_len)
            )
            tokens = torch.from_numpy(tok)
            present.append(tok[:, 0] > 0)
        mask = np.stack(present, axis=1) if present else np.zeros((n_new, 0), dtype=bool)
        if self.item_ids:
            mask = np.hstack([np.zeros((n_new, 1), dtype=bool), mask])
        net = self._network()
        with torch.no_grad():
            vec, b = net.item_vectors(
                torch.zeros(n_new, dtype=torch.int64), dense, tokens, torch.from_numpy(mask.astype(np.float32))
            )
        start = int(self.n_items_)
        self.item_vectors_ = np.vstack([self.item_vectors_, vec.numpy()]).astype(np.float32)
        self.item_bias_ = np.concatenate([self.item_bias_, b.numpy()]).astype(np.float32)
        self.item_mask_ = np.vstack([self.item_mask_, mask.astype(np.float32)])
        self.tokens_ = np.vstack([self.tokens_, tok])
        self.n_items_ = self.item_vectors_.shape[0]
        seen = sp.csr_matrix(self.seen_)
        self.seen_ = sp.csr_matrix((seen.data, seen.indices, seen.indptr), shape=(seen.shape[0], self.n_items_))
        return np.arange(start, self.n_items_, dtype=np.int64)
