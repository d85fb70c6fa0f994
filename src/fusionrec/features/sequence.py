"""User behaviour encoders over :class:`~fusionrec.data.Interactions`: RFM / session statistics and a GRU.

Both take an ``Interactions`` (with timestamps for the time features) and return one row per user,
aligned with ``interactions.user_ids``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from fusionrec._params import BOOL, NONNEGATIVE, POSITIVE, POSITIVE_INT, SEED
from fusionrec._progress import progress
from fusionrec.data.interactions import Interactions
from fusionrec.errors import BundleError, DataError
from fusionrec.features.base import Encoder, FeatureReport

__all__ = ["BEHAVIOUR_FEATURES", "BehaviourStatsEncoder", "GRUSequenceEncoder", "behaviour_stats", "user_sequences"]

BEHAVIOUR_FEATURES = (
    "log_count",
    "mean_value",
    "std_value",
    "log_recency_days",
    "log_tenure_days",
    "log_events_per_day",
    "log_sessions",
    "mean_session_events",
    "log_mean_session_minutes",
    "log_mean_gap_hours",
)


def _check(raw: Any) -> Interactions:
    if not isinstance(raw, Interactions):
        raise DataError(f"behaviour encoders take an fusionrec.data.Interactions, got {type(raw).__name__}")
    return raw


def user_sequences(x: Interactions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entries ordered by (user, time): ``(users, items, timestamps)`` int64 arrays (time 0 when absent)."""
    users = x.row_indices()
    items = x.matrix.indices.astype(np.int64)
    ts = x.timestamps if x.timestamps is not None else np.zeros(x.nnz, dtype=np.int64)
    order = np.lexsort((items, ts, users))
    return users[order], items[order], np.asarray(ts, dtype=np.int64)[order]


def behaviour_stats(x: Interactions, reference_time: int | None = None, session_gap: int = 1800) -> np.ndarray:
    """Per-user statistics ``float64 [n_users, 10]`` in the order of :data:`BEHAVIOUR_FEATURES`.

    Counts and values: ``log(1 + n)``, mean and std of the stored values.  With timestamps: recency
    ``log(1 + (reference_time - last) / day)``, tenure ``log(1 + (last - first) / day)``, events per active day,
    sessions (a gap over ``session_gap`` seconds starts a new one), mean events per session, mean session length
    in minutes and mean gap between events in hours (logs of ``1 + value``).  Users without events get zeros.
    """
    n = x.n_users
    counts = x.user_counts().astype(np.float64)
    rows = x.row_indices()
    vals = x.matrix.data.astype(np.float64)
    safe = np.maximum(counts, 1)
    mean = np.bincount(rows, weights=vals, minlength=n) / safe
    var = np.bincount(rows, weights=vals**2, minlength=n) / safe - mean**2
    out = np.zeros((n, len(BEHAVIOUR_FEATURES)))
    out[:, 0] = np.log1p(counts)
    out[:, 1] = mean
    out[:, 2] = np.sqrt(np.maximum(var, 0))
    if x.timestamps is not None and x.nnz:
        u, _, t = user_sequences(x)
        ref = int(t.max()) if reference_time is None else int(reference_time)
        has = counts > 0
        first = np.full(n, 0, dtype=np.int64)
        last = np.full(n, 0, dtype=np.int64)
        starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
        ends = np.r_[starts[1:], len(u)] - 1
        first[u[starts]] = t[starts]
        last[u[ends]] = t[ends]
        tenure = (last - first) / 86400.0
        out[has, 3] = np.log1p(np.maximum(ref - last[has], 0) / 86400.0)
        out[has, 4] = np.log1p(tenure[has])
        out[has, 5] = np.log1p(counts[has] / np.maximum(tenure[has], 1.0))
        gaps = np.diff(t).astype(np.float64)
        same = u[1:] == u[:-1]
        new_session = np.r_[True, ~same | (gaps > session_gap)]
        sess_id = np.cumsum(new_session) - 1
        sess_user = u[new_session]
        n_sess = np.bincount(sess_user, minlength=n).astype(np.float64)
        sess_start = t[new_session]
        sess_end = np.zeros(len(sess_start), dtype=np.int64)
        np.maximum.at(sess_end, sess_id, t)
        sess_minutes = (sess_end - sess_start) / 60.0
        out[has, 6] = np.log1p(n_sess[has])
        out[has, 7] = counts[has] / np.maximum(n_sess[has], 1)
        out[has, 8] = np.log1p(
            np.bincount(sess_user, weights=sess_minutes, minlength=n)[has] / np.maximum(n_sess[has], 1)
        )
        gap_sum = np.bincount(u[1:][same], weights=gaps[same], minlength=n)
        out[has, 9] = np.log1p(gap_sum[has] / np.maximum(counts[has] - 1, 1) / 3600.0)
    return out


class BehaviourStatsEncoder(Encoder):
    """Recency / frequency / session statistics per user (:func:`behaviour_stats`), standardised with fit-time statistics.

    The reference time for recency is the latest timestamp seen by :meth:`fit`.
    """

    name = "behaviour-stats"
    stateless = False
    cacheable = False
    state_attrs = ("dim_", "reference_time_", "mean_", "scale_")

    _param_constraints: ClassVar[dict[str, list[Any]]] = {"session_gap": [*POSITIVE_INT], "standardize": [*BOOL]}

    def __init__(self, *, session_gap: int = 1800, standardize: bool = True) -> None:
        self.session_gap = session_gap
        self.standardize = standardize

    def _as_items(self, raw: Any) -> Any:
        return _check(raw)

    def _fit(self, raw: Any) -> None:
        x = _check(raw)
        self.reference_time_ = int(x.timestamps.max()) if x.timestamps is not None and x.nnz else 0
        stats = behaviour_stats(x, self.reference_time_, int(self.session_gap))
        self.mean_ = stats.mean(0)
        std = stats.std(0)
        self.scale_ = np.where(std > 1e-12, std, 1.0)
        self.dim_ = stats.shape[1]

    def _encode_batch(self, items: Any) -> tuple[np.ndarray, dict[int, str]]:
        stats = behaviour_stats(items, self.reference_time_, int(self.session_gap))
        if self.standardize:
            stats = (stats - self.mean_) / self.scale_
        return stats.astype(np.float32), {}


class GRUSequenceEncoder(Encoder):
    """A GRU over each user's time-ordered item history, trained by next-item prediction; outputs user vectors.

    Model: ``e_t = E[i_t]`` (``E`` is ``(n_items + 1) x dim``, row 0 padding), ``h_t = GRU(e_t, h_{t-1})``, and the
    next item is predicted by a softmax over ``h_t E^T`` (tied weights); the loss is the cross-entropy of every
    next item in the last ``max_len + 1`` events of each user.  The user vector is the final hidden state over the
    last ``max_len`` items (zeros for users with no history).  Deterministic for a ``seed`` (CPU).

    Parameters
    ----------
    n_factors
        Embedding and hidden size (the output dimension); formerly ``embedding_dim``.
    max_len
        History length used for training and encoding.
    epochs, batch_size, lr
        Adam training settings.
    reg
        Adam's L2 weight decay (formerly ``weight_decay``).
    seed
        Seeds initialisation and shuffling.
    """

    name = "gru-sequence"
    stateless = False
    cacheable = False
    deterministic = True
    state_attrs = ("dim_", "n_items_", "losses_")
    custom_state_attrs = ("model_",)

    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_factors": [*POSITIVE_INT],
        "max_len": [*POSITIVE_INT],
        "epochs": [*POSITIVE_INT],
        "batch_size": [*POSITIVE_INT],
        "lr": [*POSITIVE],
        "reg": [*NONNEGATIVE],
        "seed": [*SEED],
    }
    #: the library's names for the same ideas (GRU4Rec's ``n_factors``, every model's ``reg``)
    _renamed_params: ClassVar[dict[str, str]] = {"embedding_dim": "n_factors", "weight_decay": "reg"}

    def __init__(
        self,
        *,
        n_factors: int = 64,
        max_len: int = 50,
        epochs: int = 5,
        batch_size: int = 128,
        lr: float = 0.005,
        reg: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.n_factors = n_factors
        self.max_len = max_len
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.reg = reg
        self.seed = seed

    def _as_items(self, raw: Any) -> Any:
        return _check(raw)

    def _padded(self, x: Interactions, length: int) -> np.ndarray:
        """The last ``length`` items (+1, 0 = padding) of each user, right-aligned: ``int64 [n_users, length]``."""
        u, i, _ = user_sequences(x)
        counts = np.bincount(u, minlength=x.n_users)
        ends = np.cumsum(counts)
        pos_from_end = ends[u] - np.arange(len(u)) - 1  # 0 for the latest event
        keep = pos_from_end < length
        out = np.zeros((x.n_users, length), dtype=np.int64)
        out[u[keep], length - 1 - pos_from_end[keep]] = i[keep] + 1
        return out

    def _module(self, n_items: int) -> Any:
        import torch

        class _Net(torch.nn.Module):
            def __init__(self, n: int, d: int) -> None:
                super().__init__()
                self.emb = torch.nn.Embedding(n + 1, d, padding_idx=0)
                self.gru = torch.nn.GRU(d, d, batch_first=True)

            def forward(self, seq: Any) -> Any:
                """``seq`` int64 [B, L] -> hidden states float32 [B, L, d]."""
                return self.gru(self.emb(seq))[0]

        return _Net(n_items, int(self.n_factors))

    def _fit(self, raw: Any) -> None:
        import torch

        x = _check(raw)
        torch.manual_seed(int(self.seed))
        rng = np.random.default_rng(int(self.seed))
        self.n_items_ = x.n_items
        net = self._module(x.n_items)
        opt = torch.optim.Adam(net.parameters(), lr=float(self.lr), weight_decay=float(self.reg))
        seqs = self._padded(x, int(self.max_len) + 1)
        seqs = seqs[(seqs > 0).sum(1) >= 2]
        self.losses_ = []
        if len(seqs) == 0:
            raise DataError("no user has two or more interactions; the GRU has nothing to learn from")
        data = torch.from_numpy(seqs)
        bs = int(self.batch_size)
        for _ in progress(range(int(self.epochs)), total=int(self.epochs), desc="training GRU"):
            order = rng.permutation(len(seqs))
            total, n_batches = 0.0, 0
            net.train()
            for s in range(0, len(order), bs):
                batch = data[torch.from_numpy(order[s : s + bs])]
                inp, target = batch[:, :-1], batch[:, 1:]
                h = net(inp)
                logits = h @ net.emb.weight.T  # [B, L, n_items + 1]
                logits[..., 0] = -1e9  # never predict padding
                mask = (target > 0) & (inp > 0)
                loss = torch.nn.functional.cross_entropy(logits[mask], target[mask])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach())
                n_batches += 1
            self.losses_.append(total / max(n_batches, 1))
        net.eval()
        self.model_ = net
        self.dim_ = int(self.n_factors)

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Adds the network weights as float arrays ``model.<parameter name>``."""
        meta, arrays = super().get_state()
        if hasattr(self, "model_"):
            for key, value in self.model_.state_dict().items():
                arrays[f"model.{key}"] = value.detach().cpu().numpy()
        return meta, arrays

    def set_state(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        import torch

        super().set_state(meta, arrays)
        net = self._module(int(self.n_items_))
        weights = {
            k[len("model.") :]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith("model.")
        }
        try:
            net.load_state_dict(weights, strict=True)
        except RuntimeError as exc:
            raise BundleError(
                f"the stored GRU weights do not fit the encoder ({exc}); refit the encoder and save it again"
            ) from exc
        net.eval()
        self.model_ = net

    def _encode_batch(self, items: Any) -> tuple[np.ndarray, dict[int, str]]:
        import torch

        x = items
        if x.n_items > self.n_items_:
            raise DataError(f"the interactions have {x.n_items} items; the GRU was fitted on {self.n_items_}")
        seqs = torch.from_numpy(self._padded(x, int(self.max_len)))
        out = np.zeros((x.n_users, int(self.n_factors)), dtype=np.float32)
        with torch.inference_mode():
            for s in range(0, len(seqs), 1024):
                out[s : s + 1024] = self.model_(seqs[s : s + 1024])[:, -1].numpy()
        out[(seqs > 0).sum(1).numpy() == 0] = 0.0
        return out, {}

    def transform_report(self, raw: Any, ids: Any = None) -> tuple[np.ndarray, FeatureReport]:
        if not hasattr(self, "model_"):
            self._check_fitted()
        return super().transform_report(raw, ids)

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "model_")
