"""Sequential (next-item) recommenders: SASRec, BERT4Rec and GRU4Rec, with a content-aware SASRec.

Each user's training history becomes one sequence ordered by timestamp; **equal timestamps are broken by item
index** (the smaller index comes first), the rule of :func:`fusionrec.data.splits.leave_last_out`, so a
leave-last-out test item is always the step after the training sequence.  Interactions without timestamps are
refused with a :class:`~fusionrec.errors.DataError` (there is no meaningful order to fall back on).

Training cuts each user's sequence from its end into windows of ``max_len + 1`` items overlapping by one, so that
every step of every history is a target once (the paper keeps only the last window, which wastes the long histories
of MovieLens users).  The networks predict, at every position of a window, the next item with a **full softmax
(cross-entropy over every item)**.  SASRec and GRU4Rec can instead train on **every prefix** (``every_prefix=True``,
RecBole's augmentation): each step of each history becomes its own example, its last ``max_len`` predecessors the
input and the loss read at the last position only; every target then sees a full context, at about ``max_len``
times the network positions (and optimizer steps) of the windows per epoch.  BERT4Rec trains on windows of
``max_len`` items with random items replaced by a ``[MASK]`` token (the cloze task) and predicts them from both sides.  We use it instead of the paper's BCE with one sampled negative because on
catalogues of up to tens of thousands of items it is affordable and is known to train SASRec markedly better
(Klenitskiy & Vasilev, RecSys 2023; Petrov & Macdonald, RecSys 2023), and because it has no sampling noise.
Item embeddings are shared between the input and the output layer.

A fitted model keeps each user's representation (the network output at the last position of their sequence) in
``user_vectors_`` and the output item table in ``item_vectors_``, so :meth:`score` is one matrix product and needs
no torch; :meth:`fold_in_user` runs the network over a new sequence *in the order given* (a user's recent events
in serving).  The network weights are saved as arrays (no pickle) next to them.

torch is imported inside the functions that need it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from fusionrec.data.interactions import Interactions
from fusionrec.data.side import SideInfo, fuse_modalities
from fusionrec.errors import ConfigError, DataError, NotFittedError
from fusionrec.models._netstate import NetStateRecommender
from fusionrec.models._params import (
    BOOL,
    MODALITY_NAMES,
    MODALITY_WEIGHTS,
    NONNEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    SEED,
    Interval,
)
from fusionrec.models.coldstart import check_history, place_user
from fusionrec.models.declaration import ROWS, Indexed
from fusionrec.models.factors import Factors

__all__ = ["CNNLSTM", "BERT4Rec", "GRU4Rec", "SASRec", "user_sequences"]

_NET = "net__"  # state keys of the network weights: net__<torch key>_


def user_sequences(train: Interactions) -> list[np.ndarray]:
    """Each user's item indices ordered by timestamp, equal timestamps by item index (``int64`` arrays).

    Raises :class:`DataError` when ``train`` has no timestamps.
    """
    if train.timestamps is None:
        raise DataError(
            "sequential models order each user's items by time but these interactions have no timestamps; "
            "load them with a timestamp column (or use a non-sequential model such as ALS or EASE)"
        )
    m = train.matrix
    rows = train.row_indices()
    order = np.lexsort((m.indices, train.timestamps, rows))
    items = m.indices[order].astype(np.int64)
    return np.split(items, m.indptr[1:-1])


def _left_pad(seqs: Sequence[np.ndarray], length: int) -> np.ndarray:
    """``int64 [n, length]`` of ``item + 1`` (0 = padding), each sequence's last ``length`` items right-aligned."""
    out = np.zeros((len(seqs), length), dtype=np.int64)
    for r, s in enumerate(seqs):
        tail = np.asarray(s, dtype=np.int64)[-length:] if length else s[:0]
        if len(tail):
            out[r, length - len(tail) :] = tail + 1
    return out


def _windows(seq: np.ndarray, size: int) -> list[np.ndarray]:
    """``seq`` cut from its end into windows of ``size`` items overlapping by one (every step is a target once)."""
    out = []
    end = len(seq)
    while end >= 2:
        out.append(seq[max(0, end - size) : end])
        end -= size - 1
    return out


def _prefix_examples(seqs: Sequence[np.ndarray], length: int) -> tuple[np.ndarray, np.ndarray]:
    """RecBole's augmentation: one example per step ``t >= 1`` of every sequence, the input its last ``length``
    predecessors (``item + 1``, left-padded) and the target ``item + 1`` in the last column of an otherwise zero
    ``targets`` (so the windows' loss code reads it at the last position only).  ``sum(len(s) - 1)`` examples."""
    rows, last = [], []
    for s in seqs:
        if len(s) < 2:
            continue
        padded = np.concatenate([np.zeros(length, dtype=np.int64), np.asarray(s, dtype=np.int64) + 1])
        # window j covers padded[j : j + length], i.e. the items before step j of s
        rows.append(np.lib.stride_tricks.sliding_window_view(padded, length)[1 : len(s)])
        last.append(padded[length + 1 :])
    if not rows:
        return np.zeros((0, length), dtype=np.int64), np.zeros((0, length), dtype=np.int64)
    inputs = np.ascontiguousarray(np.concatenate(rows))
    targets = np.zeros_like(inputs)
    targets[:, -1] = np.concatenate(last)
    return inputs, targets


def _torch_device(name: str, owner: str) -> Any:
    """The ``torch.device`` to train on; a :class:`ConfigError` that says what to do when it is not usable."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"{owner}: device={name!r} is not a torch device; use 'cpu', 'cuda' or 'cuda:N'") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"{owner}: device={name!r} but this torch sees no CUDA GPU; install a CUDA build of torch on a machine "
            "with a GPU, or use device='cpu'"
        )
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"{owner}: device={name!r} is not supported; use 'cpu', 'cuda' or 'cuda:N'")
    return device


def _build_net(kind: str, n_items: int, d: int, max_len: int, n_layers: int, n_heads: int, dropout: float,
               content_dim: int, cnn: tuple[int, int, int] = (8, 8, 8)) -> Any:  # fmt: skip
    """The torch module of ``kind`` ("sasrec", "bert4rec", "gru4rec" or "cnnlstm"); defined here so that torch loads
    only when used.  ``cnn`` is the CNN tower's ``(channels, kernel, pool)`` (``cnnlstm`` only).

    SASRec and BERT4Rec share the Transformer: learned positions, pre-norm blocks, a final LayerNorm; SASRec's
    attention is causal, BERT4Rec's bidirectional over the non-padding positions, with GELU blocks of width ``4d``,
    the paper's output head (``LayerNorm(GELU(W h + b))``) and a per-item output bias.  BERT4Rec's embedding table
    has one more row, the ``[MASK]`` token ``n_items + 1``."""
    import torch
    from torch import nn

    class ImageTower(nn.Module):
        """CNN over an item's image feature vector read as a 1-channel signal: conv1d -> ReLU -> max-pool -> linear."""

        def __init__(self) -> None:
            super().__init__()
            channels, kernel, pool = cnn
            kernel = min(kernel, content_dim)
            self.conv = nn.Conv1d(1, channels, kernel, stride=max(1, kernel // 2))
            self.pool = nn.AdaptiveMaxPool1d(pool)
            self.out = nn.Linear(channels * pool, d)

        def forward(self, x: Any) -> Any:
            h = self.pool(torch.relu(self.conv(x.unsqueeze(1))))
            return self.out(h.flatten(1))

    class SeqNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.item_emb = nn.Embedding(n_items + (2 if kind == "bert4rec" else 1), d, padding_idx=0)
            nn.init.normal_(self.item_emb.weight, std=1.0 / math.sqrt(d))
            with torch.no_grad():
                self.item_emb.weight[0].zero_()
            self.content = nn.Linear(content_dim, d, bias=False) if content_dim and kind == "sasrec" else None
            self.tower = ImageTower() if kind == "cnnlstm" else None
            self.drop = nn.Dropout(dropout)
            if kind == "cnnlstm":
                self.lstm = nn.LSTM(d, d, num_layers=n_layers, batch_first=True)
            elif kind in ("sasrec", "bert4rec"):
                bert = kind == "bert4rec"
                self.pos_emb = nn.Embedding(max_len, d)
                width, act = (4 * d, "gelu") if bert else (d, "relu")
                self.layers = nn.ModuleList(
                    nn.TransformerEncoderLayer(
                        d,
                        n_heads,
                        dim_feedforward=width,
                        dropout=dropout,
                        batch_first=True,
                        norm_first=True,
                        activation=act,
                    )
                    for _ in range(n_layers)
                )
                self.norm = nn.LayerNorm(d)
                if bert:
                    self.head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d))
                    # indexed like the embedding table (row 0 padding, the last row the mask token)
                    self.out_bias = nn.Parameter(torch.zeros(n_items + 2))
            else:
                self.gru = nn.GRU(d, d, num_layers=n_layers, batch_first=True)

        def table(self, content: Any) -> Any:
            """Item vectors ``[n_items + 1, d]`` (row 0: padding), with the content projection when used;
            ``cnnlstm``: ``[n_items + 1, 2d]``, the id embedding concatenated with the CNN tower of the image."""
            w = self.item_emb.weight
            if self.content is not None:
                w = w + self.content(content)
            if self.tower is not None:
                w = torch.cat([w, self.tower(content)], dim=1)
            return w

        def output(self, table: Any) -> Any:
            """The item vectors the hidden states are scored against, ``[n_items, d]`` (BERT4Rec: ``[n_items,
            d + 1]``, the output bias as the last column, matched by a constant 1 in the hidden states)."""
            items = table[1 : n_items + 1]
            if kind == "bert4rec":
                return torch.cat([items, self.out_bias[1 : n_items + 1].unsqueeze(1)], dim=1)
            return items

        def forward(self, seq: Any, table: Any) -> Any:
            """Hidden states ``[B, L, d]`` of left-padded sequences ``[B, L]`` (SASRec, GRU4Rec, CNNLSTM: position t
            sees items <= t; BERT4Rec: every non-padding position, and ``[B, L, d + 1]`` with the bias column)."""
            keep = (seq > 0).unsqueeze(-1).to(table.dtype)
            x = table[seq] * keep
            if kind == "cnnlstm":
                # LSTM over the id embeddings, concatenated with the running mean of the CNN image vectors
                hidden = self.lstm(self.drop(x[..., :d]))[0]
                seen = keep.cumsum(1).clamp(min=1.0)
                return torch.cat([hidden, self.drop(x[..., d:]).cumsum(1) / seen], dim=-1)
            if kind == "gru4rec":
                return self.gru(self.drop(x))[0]
            length = seq.shape[1]
            x = x * math.sqrt(d) + self.pos_emb(torch.arange(max_len - length, max_len, device=seq.device)) * keep
            x = self.drop(x) * keep
            if kind == "sasrec":
                causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=seq.device), diagonal=1)
                for layer in self.layers:
                    x = layer(x, src_mask=causal) * keep
                return self.norm(x)
            pad = seq == 0
            for layer in self.layers:
                x = layer(x, src_key_padding_mask=pad) * keep
            h = self.head(self.norm(x))
            return torch.cat([h, torch.ones_like(h[..., :1])], dim=-1)

    return SeqNet()


class _Sequential(NetStateRecommender):
    """Shared fitting, scoring, persistence and fold-in of the sequential models (module notes)."""

    _net_prefix = _NET

    # declaration (fusionrec.models.declaration).  ``sequences_`` [U, max_len] holds ``item + 1`` (0 = padding), so a
    # forgotten user's sequence becomes all padding; ``user_vectors_`` is the network output at its end.  The
    # network's item table ``net__item_emb.weight_`` [I + 1, d] is indexed by ``item + 1`` (row 0: padding), not by
    # item, so it is not declared as item rows; no network weight has a user axis.
    user_state: ClassVar[dict[str, Indexed]] = {"sequences_": Indexed(fill=0), "user_vectors_": ROWS}
    item_state: ClassVar[dict[str, Indexed]] = {"item_vectors_": ROWS}
    fit_inputs: ClassVar[frozenset[str]] = frozenset({"timestamps"})
    can_fold_in: ClassVar[bool] = True
    _renamed_params: ClassVar[dict[str, str]] = {"weight_decay": "reg"}

    _kind: ClassVar[str] = ""
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        # rank 1 orders every user's items alike (a scalar times one item vector): not a personalised model
        "n_factors": [Interval(int, 2, None)],
        "max_len": [*POSITIVE_INT],
        "n_layers": [*POSITIVE_INT],
        "dropout": [Interval(float, 0, 1, closed="left")],
        "epochs": [*POSITIVE_INT],
        "batch_size": [*POSITIVE_INT],
        "lr": [*POSITIVE],
        "reg": [*NONNEGATIVE],
        "threads": [*POSITIVE_INT],
        "device": [str],
        "seed": [*SEED],
    }

    n_factors: int
    max_len: int
    n_layers: int
    dropout: float
    epochs: int
    batch_size: int
    lr: float
    reg: float
    threads: int
    device: str
    seed: int | None

    # hooks the subclasses fill in
    def _n_heads(self) -> int:
        return 1

    def _content(self, side: SideInfo | None, n_items: int) -> np.ndarray | None:
        return None

    def _cnn(self) -> tuple[int, int, int]:
        return (8, 8, 8)

    def _every_prefix(self) -> bool:
        """Whether to train on every prefix (the ``every_prefix`` parameter of SASRec and GRU4Rec)."""
        return bool(getattr(self, "every_prefix", False))

    def _examples(self, seqs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(inputs, targets)``, both ``[n, max_len]`` of ``item + 1`` (0: padding / no target): the windows of
        the module notes, or every prefix with its next item (``every_prefix``)."""
        length = int(self.max_len)
        if self._every_prefix():
            return _prefix_examples(seqs, length)
        windows = _left_pad([w for s in seqs for w in _windows(s, length + 1)], length + 1)
        trainable = np.flatnonzero((windows > 0).sum(1) >= 2)
        return windows[trainable, :-1], windows[trainable, 1:]

    def _batch(self, seq: Any, tgt: Any, rng: np.random.Generator) -> tuple[Any, Any]:
        """The network input and targets of one batch (BERT4Rec masks items here)."""
        return seq, tgt

    def _net_input(self, sequences: np.ndarray) -> np.ndarray:
        """The network input that encodes users from their left-padded ``sequences`` (BERT4Rec appends [MASK])."""
        return sequences

    def _make_net(self) -> Any:
        content = getattr(self, "content_", None)
        return _build_net(
            self._kind, int(self.n_items_), int(self.n_factors), int(self.max_len), int(self.n_layers),
            self._n_heads(), float(self.dropout), 0 if content is None else int(content.shape[1]), self._cnn(),
        )  # fmt: skip

    def _content_tensor(self) -> Any:
        import torch

        content = getattr(self, "content_", None)
        if content is None:
            return None
        return torch.from_numpy(np.vstack([np.zeros((1, content.shape[1]), np.float32), content]))

    # ------------------------------------------------------------------ fitting
    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        import torch

        from fusionrec.models.graph import torch_threads

        if int(self.n_factors) % self._n_heads():
            raise ConfigError(
                f"{type(self).__name__}: n_factors={self.n_factors} must be divisible by n_heads={self._n_heads()}"
            )
        seqs = user_sequences(train)
        content = self._content(side, train.n_items)
        if content is not None:
            self.content_ = content
        length = int(self.max_len)
        inputs, targets = self._examples(seqs)
        rng = np.random.default_rng(self.seed)
        device = _torch_device(str(self.device), type(self).__name__)
        with torch.random.fork_rng(devices=[]), torch_threads(int(self.threads)):
            torch.manual_seed(0 if self.seed is None else int(self.seed))
            net = self._make_net().to(device)
            opt = torch.optim.Adam(net.parameters(), lr=float(self.lr), weight_decay=float(self.reg))
            content_t = self._content_tensor()
            content_t = None if content_t is None else content_t.to(device)
            inputs_t, targets_t = torch.from_numpy(inputs).to(device), torch.from_numpy(targets).to(device)
            net.train()
            for _ in range(int(self.epochs)):
                perm = torch.from_numpy(rng.permutation(len(inputs))).to(device)
                for start in range(0, len(perm), int(self.batch_size)):
                    sel = perm[start : start + int(self.batch_size)]
                    seq, tgt = self._batch(inputs_t[sel], targets_t[sel], rng)
                    table = net.table(content_t)
                    h = net(seq, table)
                    valid = (tgt > 0) & (seq > 0)
                    logits = h[valid] @ net.output(table).T
                    loss = torch.nn.functional.cross_entropy(logits, tgt[valid] - 1)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            net.eval()
            net.cpu()  # scoring, fold-in and persistence run on the CPU (module notes)
            self._net = net
            self._net_arrays = {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}
            self.sequences_ = _left_pad(seqs, length)
            self.item_vectors_, self.user_vectors_ = self._encode(self.sequences_)

    def _encode(self, sequences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(item vectors [I, d], user vectors [n, d])`` of left-padded ``sequences`` (eval mode, no grad)."""
        import torch

        from fusionrec.models.graph import torch_threads

        net = self._network()
        with torch.no_grad(), torch_threads(int(self.threads)):
            table = net.table(self._content_tensor()).detach()
            items = net.output(table)
            inputs = self._net_input(sequences)
            users = [net(torch.from_numpy(inputs[s : s + 1024]), table)[:, -1] for s in range(0, len(inputs), 1024)]
            user_vectors = torch.cat(users) if users else torch.zeros((0, items.shape[1]))
        return items.numpy().astype(np.float32), user_vectors.numpy().astype(np.float32)

    def refresh_histories(self, history: Interactions) -> None:
        """Re-encode every user from a longer ``history`` without retraining the network.

        ``history`` holds the model's users and items (the same id maps), e.g. train plus the validation items:
        each user's sequence becomes their whole ``history`` in time order (equal timestamps by item index), and
        ``sequences_``, ``user_vectors_`` and ``seen_`` follow it.  This is how a leave-last-out test scores the
        item after the validation one (RecBole's protocol too).
        """
        self._check_fitted()
        if history.n_users != int(self.n_users_) or history.n_items != int(self.n_items_):
            raise DataError(
                f"history has {history.n_users} users x {history.n_items} items but the model "
                f"{self.n_users_} x {self.n_items_}; pass interactions over the training id maps"
            )
        sequences = _left_pad(user_sequences(history), int(self.max_len))
        _, vectors = self._encode(sequences)
        self.sequences_, self.user_vectors_, self.seen_ = sequences, vectors, history.matrix

    # ------------------------------------------------------------------ scoring
    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """``user_vectors_ @ item_vectors_.T`` through :meth:`Factors.scores`, the one inner-product scorer (the model
        is not a factor model: new items need the network's item table, so it declares no ``factors()``)."""
        self._check_fitted()
        return Factors(self.user_vectors_, self.item_vectors_).scores(users, items)

    def item_embeddings(self) -> np.ndarray:
        self._check_fitted()
        return self.item_vectors_

    # ------------------------------------------------------------------ cold start
    def fold_in_user(
        self,
        items: np.ndarray | Sequence[int],
        values: np.ndarray | None = None,
        *,
        user_features: dict[str, np.ndarray] | None = None,
        user: int | None = None,
    ) -> np.ndarray:
        """Place a user from an item sequence **in the order given** (oldest first); returns ``int64 [1]``.

        Only the last ``max_len`` items count.  ``values`` are checked but not used (a sequence model reads the
        order, not the strength).  ``user`` replaces that user's sequence instead of appending a new user; then the
        history the model already holds keeps its time order, so that a caller may pass the user's known items in
        any order followed by new events (as serving does): given items of the user's history that are older than
        the stored sequence come first, then those in the stored sequence in its order, then the others in the
        order given.
        """
        self._check_fitted()
        if user_features:
            raise ConfigError(f"{type(self).__name__} places users from their item sequence, not user features")
        uniq, weights = check_history(items, values, int(self.n_items_), int(self.n_users_), user)
        given = np.asarray(items, dtype=np.int64).ravel()
        if user is not None and len(given):
            given = self._keep_known_order(given, int(user))
        seq = _left_pad([given], int(self.max_len))
        _, vec = self._encode(seq)
        rows = {"sequences_": seq[0], "user_vectors_": vec[0]}
        return place_user(self, rows, uniq, weights, user)

    def _keep_known_order(self, given: np.ndarray, user: int) -> np.ndarray:
        """``given`` reordered for a known ``user`` by the rule of :meth:`fold_in_user` (stable)."""
        stored = self.sequences_[user]
        stored = stored[stored > 0] - 1
        position = {int(i): p for p, i in enumerate(stored.tolist())}
        row = self.seen_[user]
        older = set(row.indices.tolist()) - set(position)
        keys = [
            (1, position[i]) if i in position else (0, i) if i in older else (2, k)
            for k, i in enumerate(given.tolist())
        ]
        order = sorted(range(len(given)), key=keys.__getitem__)
        return given[order]

    # ------------------------------------------------------------------ persistence
    def _network(self) -> Any:
        import torch

        net = getattr(self, "_net", None)
        if net is None:
            if not getattr(self, "_net_arrays", None):
                raise NotFittedError(f"{type(self).__name__} has no network weights; fit it (or load a bundle) first")
            net = self._make_net()
            net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self._net_arrays.items()})
            self._net = net
        net.eval()
        return net


class SASRec(_Sequential):
    """Self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

    Causal self-attention (pre-norm Transformer blocks) over the user's last ``max_len`` items with learned
    positional embeddings and dropout; item embeddings shared with the output layer; full-softmax next-item loss
    (module notes).  With ``use_content=True`` each item's input (and output) vector adds a linear projection of
    its modality features from ``side.item_features``, fused by :func:`~fusionrec.data.side.fuse_modalities`
    (``modalities``: which ones, default all; ``modality_weights``: their shares).

    Parameters
    ----------
    n_factors
        Hidden size (item embedding width).
    max_len
        Items of the sequence the model reads (the latest ones).
    n_layers, n_heads
        Transformer blocks and attention heads (``n_factors`` must be divisible by ``n_heads``).
    dropout
        Dropout on the inputs and inside the blocks.
    epochs, batch_size, lr
        Adam training over users' sequences (``batch_size`` windows, or prefixes with ``every_prefix``).
    reg
        Adam's L2 weight decay (formerly ``weight_decay``, which still works with a ``FutureWarning``).
    every_prefix
        Train on every prefix of every sequence (RecBole's augmentation: one example per step, its last
        ``max_len`` predecessors the input, the loss at the last position) instead of the windows (module notes).
        Each target then sees a full ``max_len`` context and an epoch takes ``batch_size``-sized steps over
        ~``max_len`` times as many examples: about ``max_len`` times the network positions, measured ~10x the
        CPU of a windows epoch on ml-100k (``max_len=50``: 89.7 vs 9.4 CPU-s), and far more learned per epoch
        (1 epoch: valid NDCG@10 .0722 vs .0259).  Default ``False``: at equal fit CPU the windows are ahead on
        ml-100k valid NDCG@10 (10 epochs .0936 in 41.8 CPU-s); use it for budgets of a few epochs
        (benchmarks/results/sequential.md, issue 22).
    use_content, modalities, modality_weights
        Content-aware item inputs (above).
    threads
        torch intra-op threads during fit and fold-in.
    device
        Where the network trains: ``"cpu"`` (default), ``"cuda"`` or ``"cuda:N"``; scoring, fold-in and the saved
        weights stay on the CPU.
    seed
        Seeds torch and the batch order: a fit on CPU is deterministic.

    Cold start: a new user is placed from their event sequence with :meth:`fold_in_user`; new items are not
    supported (refit).
    """

    #: tuning ranges (:mod:`fusionrec.tuning`): name -> (kind, low, high[, "log"]) or ("categorical", [choices])
    _search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "n_factors": ("int", 16, 128, "log"),
        "n_layers": ("int", 1, 3),
        "dropout": ("float", 0.0, 0.5),
        "lr": ("float", 1e-4, 1e-2, "log"),
        "max_len": ("int", 20, 200, "log"),
    }

    _kind = "sasrec"
    uses_side_info: ClassVar[bool] = True  # only read when use_content=True
    modality_param: ClassVar[str | None] = "modalities"
    #: the fused item features (only with ``use_content=True``)
    item_state: ClassVar[dict[str, Indexed]] = {"content_": ROWS}
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_heads": [*POSITIVE_INT],
        "every_prefix": [*BOOL],
        "use_content": [*BOOL],
        "modalities": [*MODALITY_NAMES],
        "modality_weights": [*MODALITY_WEIGHTS],
    }

    def __init__(
        self,
        *,
        n_factors: int = 64,
        max_len: int = 50,
        n_layers: int = 2,
        n_heads: int = 1,
        dropout: float = 0.2,
        epochs: int = 30,
        batch_size: int = 128,
        lr: float = 0.005,
        reg: float = 0.0,
        every_prefix: bool = False,
        use_content: bool = False,
        modalities: list[str] | None = None,
        modality_weights: dict[str, float] | None = None,
        threads: int = 1,
        device: str = "cpu",
        seed: int | None = 0,
    ) -> None:
        self.n_factors = n_factors
        self.max_len = max_len
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.reg = reg
        self.every_prefix = every_prefix
        self.use_content = use_content
        self.modalities = modalities
        self.modality_weights = modality_weights
        self.threads = threads
        self.device = device
        self.seed = seed

    def _n_heads(self) -> int:
        return int(self.n_heads)

    def _content(self, side: SideInfo | None, n_items: int) -> np.ndarray | None:
        if not self.use_content:
            return None
        if side is None or not side.item_features:
            raise ConfigError(
                "SASRec(use_content=True) needs item modality features: pass side=SideInfo(item_features=...) "
                "(experiments and `fusionrec train` build it from the dataset), or set use_content=False"
            )
        names = list(side.item_features) if self.modalities is None else list(self.modalities)
        unknown = sorted(set(names) - set(side.item_features))
        if unknown:
            raise ConfigError(f"SASRec: unknown modalities {unknown}; available: {sorted(side.item_features)}")
        fused = fuse_modalities(
            side.item_features, names, modality_weights=self.modality_weights, impute="zero",
            present=side.item_present or None,
        )[0]  # fmt: skip
        if fused.shape[0] != n_items:
            raise DataError(f"item features have {fused.shape[0]} rows but the interactions {n_items} items")
        return np.ascontiguousarray(fused, dtype=np.float32)


class GRU4Rec(_Sequential):
    """GRU4Rec (Hidasi et al., ICLR 2016): a GRU over the user's last ``max_len`` items.

    The item embedding feeds the GRU and scores the output (shared), trained with the full-softmax next-item loss
    over users' sequences (module notes), as RecBole's GRU4Rec does, rather than the paper's session-parallel
    TOP1/BPR mini-batches.  Parameters as :class:`SASRec` (no attention or content options; ``every_prefix``
    trains on every prefix, ~10x the CPU per epoch: on ml-100k 3 such epochs reach valid NDCG@10 .1245 against
    .1158 for the default 30 windows epochs at about the same CPU; the default stays the windows until a paired
    test on more data shows it).  Cold start: new users by
    :meth:`fold_in_user` from their event sequence.
    """

    #: tuning ranges (:mod:`fusionrec.tuning`): name -> (kind, low, high[, "log"]) or ("categorical", [choices])
    _search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "n_factors": ("int", 16, 128, "log"),
        "dropout": ("float", 0.0, 0.5),
        "lr": ("float", 1e-4, 1e-2, "log"),
        "max_len": ("int", 20, 200, "log"),
    }

    _kind = "gru4rec"
    #: deeper stacks collapse to popularity on short logs (tests/models/test_param_ranges.py: 10 layers did)
    _param_constraints: ClassVar[dict[str, list[Any]]] = {"n_layers": [Interval(int, 1, 4)], "every_prefix": [*BOOL]}

    def __init__(
        self,
        *,
        n_factors: int = 64,
        max_len: int = 50,
        n_layers: int = 1,
        dropout: float = 0.2,
        epochs: int = 30,
        batch_size: int = 128,
        lr: float = 0.005,
        reg: float = 0.0,
        every_prefix: bool = False,
        threads: int = 1,
        device: str = "cpu",
        seed: int | None = 0,
    ) -> None:
        self.n_factors = n_factors
        self.max_len = max_len
        self.n_layers = n_layers
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.reg = reg
        self.every_prefix = every_prefix
        self.threads = threads
        self.device = device
        self.seed = seed


class BERT4Rec(_Sequential):
    """BERT4Rec (Sun et al., CIKM 2019): a bidirectional Transformer trained on the cloze task.

    Training cuts each user's sequence from its end into windows of ``max_len`` items; in every batch each item
    of a window is replaced by the ``[MASK]`` token with probability ``mask_prob`` and, always, the window's last
    item too (the paper's extra samples that mask only the last item, merged into every window, so training also
    sees the inference case); the network reads the window in both directions and predicts the masked items with
    a full softmax over every item (module notes).  To score the next item, the user's last ``max_len - 1`` items
    are followed by ``[MASK]`` and the hidden state at that position is the user vector.  The layers are SASRec's
    (shared code) without the causal mask, with GELU feed-forward blocks of width ``4 * n_factors``, the paper's
    output head and a per-item output bias (kept as the last column of ``item_vectors_``, with a 1 in
    ``user_vectors_``, so scoring stays one matrix product).

    Parameters
    ----------
    n_factors, max_len, n_layers, n_heads, dropout, epochs, batch_size, lr, reg, threads, device, seed
        As :class:`SASRec` (``batch_size``: windows per step; ``max_len`` includes the appended ``[MASK]``).
    mask_prob
        The probability that an item of a training window is masked (the paper's rho; 0.2 on MovieLens-1M, as
        RecBole's default ``mask_ratio``).
    every_prefix
        Train on the ``max_len`` items ending at every step of every sequence (RecBole's augmentation, which its
        BERT4Rec trains on too) instead of the windows: ~``max_len`` times the examples, ~40x the CPU per epoch
        (ml-100k: 192.8 vs 4.6 CPU-s), valid NDCG@10 .0836 after 1 epoch against .0284 after 3 windows epochs.

    Cold start: new users by :meth:`fold_in_user` from their event sequence; new items are not supported (refit).
    """

    #: tuning ranges (:mod:`fusionrec.tuning`): name -> (kind, low, high[, "log"]) or ("categorical", [choices])
    _search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        **SASRec._search_space,
        "mask_prob": ("float", 0.1, 0.6),  # the paper's range (0.2 on MovieLens-1M, 0.6 on the short sequences)
    }

    _kind = "bert4rec"
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        # the output head's LayerNorm over n_factors leaves every 2-d user vector +-(1, -1): all users alike
        "n_factors": [Interval(int, 4, None)],
        # a window of one item is only the appended [MASK]: nothing to read
        "max_len": [Interval(int, 2, None)],
        "n_heads": [*POSITIVE_INT],
        "mask_prob": [Interval(float, 0, 1, closed="left")],
        "every_prefix": [*BOOL],
    }

    def __init__(
        self,
        *,
        n_factors: int = 64,
        max_len: int = 50,
        n_layers: int = 2,
        n_heads: int = 2,
        dropout: float = 0.2,
        mask_prob: float = 0.2,
        epochs: int = 30,
        batch_size: int = 128,
        lr: float = 0.005,
        reg: float = 0.0,
        every_prefix: bool = False,
        threads: int = 1,
        device: str = "cpu",
        seed: int | None = 0,
    ) -> None:
        self.n_factors = n_factors
        self.max_len = max_len
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.dropout = dropout
        self.mask_prob = mask_prob
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.reg = reg
        self.every_prefix = every_prefix
        self.threads = threads
        self.device = device
        self.seed = seed

    def _n_heads(self) -> int:
        return int(self.n_heads)

    def _examples(self, seqs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Windows of ``max_len`` items cut from each sequence's end (no overlap; at least two items), or with
        ``every_prefix`` the ``max_len`` items ending at every step ``t >= 1``, as both inputs and targets:
        :meth:`_batch` masks them."""
        length = int(self.max_len)
        if self._every_prefix():
            inputs, targets = _prefix_examples(seqs, length)
            windows = np.concatenate([inputs[:, 1:], targets[:, -1:]], axis=1)
            return windows, windows
        chunks = [s[max(0, end - length) : end] for s in seqs for end in range(len(s), 1, -length)]
        windows = _left_pad([c for c in chunks if len(c) >= 2], length)
        return windows, windows

    def _batch(self, seq: Any, tgt: Any, rng: np.random.Generator) -> tuple[Any, Any]:
        """Masks each item with probability ``mask_prob`` and the last one always: the input holds ``[MASK]``
        (``n_items + 1``) there, the targets the masked items (0 elsewhere)."""
        import torch

        masked = torch.from_numpy(rng.random(tuple(seq.shape)) < float(self.mask_prob)).to(seq.device)
        masked[:, -1] = True  # left-padded windows end with an item
        masked &= seq > 0
        token = torch.full_like(seq, int(self.n_items_) + 1)
        return torch.where(masked, token, seq), torch.where(masked, seq, torch.zeros_like(seq))

    def _net_input(self, sequences: np.ndarray) -> np.ndarray:
        """The last ``max_len - 1`` items followed by ``[MASK]``: the next item is the masked one."""
        mask = np.full((len(sequences), 1), int(self.n_items_) + 1, dtype=np.int64)
        return np.concatenate([sequences[:, 1:], mask], axis=1)


class CNNLSTM(_Sequential):
    """The seeds' CNN + LSTM concatenation model: an image CNN tower and an LSTM over the sequence, concatenated.

    The parts, for a user whose last ``max_len`` items are ``i_1 .. i_t``:

    * **CNN tower** (item images): each item's image feature vector ``x_i`` (an item modality of kind ``"image"``
      in ``side.item_features``, e.g. EfficientNet-Lite0 or the image descriptors that ``build_side_info``
      computes from the poster files, themselves the output of a pretrained CNN over the pixels) is read as a
      1-channel signal by a learned ``Conv1d(1, channels, kernel, stride=kernel // 2)`` -> ReLU ->
      ``AdaptiveMaxPool1d(pool)`` -> ``Linear(channels * pool, n_factors)``, giving ``g_i``.  The features are
      standardised per column at fit (items without an image get the zero row, i.e. the mean image).  SideInfo
      holds encoded vectors, not raw pixels, so the tower runs over those vectors.
    * **LSTM** (interaction sequence): an ``n_layers`` LSTM over the learned item-id embeddings ``e_i`` of the
      sequence (time order, equal timestamps by item index: module notes); its last hidden state is ``h_t``.
    * **Concatenation and scoring**: the user vector is ``[h_t, mean(g_i1 .. g_it)]`` (the LSTM state next to the
      mean CNN vector of the images the user saw) and the item vector ``[e_j, g_j]``; the score of item ``j`` is
      their dot product, over **all** items, trained with the full-softmax next-item loss at every position as
      :class:`SASRec` (``e`` shared between input and output).  So a candidate's score is a sequence term plus a
      visual-taste term: ``h_t . e_j + mean(g) . g_j``.

    Parameters
    ----------
    n_factors
        Width of the id embedding, the LSTM state and the CNN tower's output (user/item vectors are twice this).
    max_len, n_layers, dropout, epochs, batch_size, lr, reg, threads, device, seed
        As :class:`SASRec` (``n_layers``: LSTM layers).
    image_modality
        The item modality fed to the CNN tower; ``None`` (default): the one of kind ``"image"`` in
        ``side.item_kinds``, else one named ``"image"`` or ``"poster"``.  Any dense item modality may be named.
    channels, kernel, pool
        The CNN tower's filters, kernel width (capped at the feature width) and pooled length.

    Cold start: new users by :meth:`fold_in_user` from their event sequence; new items are not supported (refit).
    Without an image modality the fit raises :class:`~fusionrec.errors.ConfigError`.
    """

    _kind = "cnnlstm"
    uses_side_info: ClassVar[bool] = True
    #: names one item modality (a string, or None for the image one), not a list
    modality_param: ClassVar[str | None] = "image_modality"
    #: the standardised image features read by the CNN tower
    item_state: ClassVar[dict[str, Indexed]] = {"content_": ROWS}
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "image_modality": [str, None],
        "channels": [*POSITIVE_INT],
        "kernel": [*POSITIVE_INT],
        "pool": [*POSITIVE_INT],
    }

    def __init__(
        self,
        *,
        n_factors: int = 64,
        max_len: int = 50,
        n_layers: int = 1,
        dropout: float = 0.2,
        epochs: int = 30,
        batch_size: int = 128,
        lr: float = 0.005,
        reg: float = 0.0,
        image_modality: str | None = None,
        channels: int = 8,
        kernel: int = 8,
        pool: int = 8,
        threads: int = 1,
        device: str = "cpu",
        seed: int | None = 0,
    ) -> None:
        self.n_factors = n_factors
        self.max_len = max_len
        self.n_layers = n_layers
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.reg = reg
        self.image_modality = image_modality
        self.channels = channels
        self.kernel = kernel
        self.pool = pool
        self.threads = threads
        self.device = device
        self.seed = seed

    def _cnn(self) -> tuple[int, int, int]:
        return (int(self.channels), int(self.kernel), int(self.pool))

    def _image_name(self, side: SideInfo | None) -> str:
        available = sorted(side.item_features) if side is not None else []
        hint = (
            "CNNLSTM reads item images: pass side=SideInfo(item_features={'image': ...}) (experiments and "
            "`fusionrec train` build it from an image modality such as posters), or name a dense item modality "
            f"with image_modality=; available item modalities: {available}"
        )
        if side is None or not side.item_features:
            raise ConfigError(f"CNNLSTM needs item image features. {hint}")
        if self.image_modality is not None:
            if self.image_modality not in side.item_features:
                raise ConfigError(f"CNNLSTM: unknown image_modality {self.image_modality!r}. {hint}")
            return str(self.image_modality)
        images = sorted(n for n in side.item_features if side.item_kinds.get(n) == "image")
        images = images or [n for n in ("image", "poster") if n in side.item_features]
        if not images:
            raise ConfigError(f"CNNLSTM found no image modality. {hint}")
        return images[0]

    def _content(self, side: SideInfo | None, n_items: int) -> np.ndarray | None:
        name = self._image_name(side)
        assert side is not None
        x = np.asarray(side.item_features[name], dtype=np.float32)
        if x.ndim != 2 or x.shape[0] != n_items:
            raise DataError(f"image modality {name!r} has shape {x.shape} but the interactions have {n_items} items")
        if not np.isfinite(x).all():
            raise DataError(f"image modality {name!r} has non-finite values; impute or drop those items' images")
        present = np.asarray(side.item_present.get(name, np.abs(x).sum(axis=1) > 0), dtype=bool)
        out = np.zeros_like(x)
        if present.any():
            rows = x[present]
            out[present] = (rows - rows.mean(axis=0)) / np.maximum(rows.std(axis=0), 1e-6)
        self.image_modality_ = name
        return np.ascontiguousarray(out, dtype=np.float32)
