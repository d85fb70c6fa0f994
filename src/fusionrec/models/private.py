"""Differentially private training (DP-SGD) and the private factor model :class:`DPMF`.

DP-SGD (Abadi et al. 2016): each step draws a Poisson sample of the training records (rate ``q = batch_size /
n_records``), computes every sampled record's own gradient, clips it to L2 norm ``max_grad_norm`` (``C``), sums
them, adds Gaussian noise ``N(0, (sigma C)^2)`` to *every* coordinate of every parameter (rows of embedding tables
that no sampled record touched included: which rows move would otherwise reveal the data) and divides by the
expected batch size ``q n``.  The optimiser (Adam) only post-processes that noisy gradient.  The noise multiplier
``sigma`` is calibrated, and the spent ``(epsilon, delta)`` reported, by Opacus's accountants
(:func:`opacus.accountants.utils.get_noise_multiplier`, RDP by default or PRV).

**Unit of privacy: one interaction record** ``(user, item[, rating])`` (record-level DP, the standard unit of
Opacus/DP-SGD): the learned parameters (user and item factors, network weights) are (epsilon, delta)-DP with
respect to adding or removing one interaction.  It is *not* user-level DP: a user with ``n`` interactions is
protected with ``n epsilon`` by group privacy only.  What is outside the guarantee: ``seen_`` (each user's own
training items, kept by every model to exclude them from the user's recommendations) and anything chosen on
validation data (hyper-parameters); private fits therefore train a fixed number of epochs (no early stopping).
Negatives are drawn uniformly over the whole catalogue (not "verified" against the data), so sampling does not
depend on other records.

Why not ``PrivacyEngine.make_private_with_epsilon``: Opacus's per-sample gradient of an ``nn.Embedding`` is a dense
``[batch, n_rows, dim]`` tensor (``opacus.grad_sample.embedding``), e.g. 512 x 9,724 x 64 floats = 1.3 GB per step
for the item table of ml-latest-small, and its ghost-clipping mode rejects modules holding raw parameters (the
fusion layers).  Here each record's gradient is computed with respect to only the rows it touches (the user row,
the positive and the negative item rows) by ``torch.func.vmap(grad(...))`` over a per-record "tiny table", its
norm is taken after merging repeated rows (exact), and the clipped rows are scattered back.  The per-record
gradients equal Opacus's ``GradSampleModule`` ones (``tests/models/test_private.py`` checks it) and the accounting
is Opacus's.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from fusionrec._progress import progress
from fusionrec.data.interactions import Interactions
from fusionrec.errors import ConfigError, DataError
from fusionrec.models._params import BOOL, POSITIVE, POSITIVE_INT, SEED, Interval, Options
from fusionrec.models.base import Recommender, SideInfo
from fusionrec.models.mf.bpr import BiasedDotScores

if TYPE_CHECKING:
    import torch

__all__ = [
    "ACCOUNTANTS",
    "DPMF",
    "DPSGD",
    "PRIVACY_PARAMS",
    "check_privacy",
    "default_delta",
    "fit_fusion_private",
    "fusion_record_grads",
    "require_opacus",
]

#: Opacus accountants that calibrate the noise and report the spent epsilon
ACCOUNTANTS = ("rdp", "prv")

#: hyper-parameter constraints shared by every model with a private option
PRIVACY_PARAMS: dict[str, list[Any]] = {
    "private": [*BOOL],
    "target_epsilon": [Interval(float, 0, None, closed="neither"), None],
    # at most 1e-3 here; fit also refuses delta >= 1/n for n training records (a delta of 1/n leaks a record)
    "delta": [Interval(float, 0, 1e-3, closed="right"), None],
    "max_grad_norm": [*POSITIVE],
    "noise_multiplier": [Interval(float, 0, None), None],
    "accountant": [Options(ACCOUNTANTS)],
}


def require_opacus() -> None:
    """Raise :class:`ConfigError` with the install command when Opacus is absent."""
    try:
        import opacus  # noqa: F401
    except ImportError as exc:  # pragma: no cover - opacus is installed in the test environment
        raise ConfigError("private=True needs Opacus: pip install 'fusionrec[privacy]' (opacus>=1.5)") from exc


def default_delta(n_records: int) -> float:
    """The default ``delta``: ``1 / (10 n)``, below the ``1 / n`` at which DP stops meaning anything."""
    return 0.1 / max(int(n_records), 1)


def check_privacy(
    owner: str,
    *,
    target_epsilon: float | None,
    noise_multiplier: float | None,
    delta: float | None,
    n_records: int,
    batch_size: int,
) -> float:
    """Validate a private fit's settings; returns the ``delta`` to use (raises :class:`ConfigError`)."""
    if n_records < 1:
        raise DataError(f"{owner}: private training needs at least one training interaction")
    if target_epsilon is None and noise_multiplier is None:
        raise ConfigError(
            f"{owner}: private=True needs target_epsilon (e.g. target_epsilon=3) or a fixed noise_multiplier"
        )
    if (
        noise_multiplier is None
        and target_epsilon is not None
        and not (math.isfinite(target_epsilon) and target_epsilon > 0)
    ):
        raise ConfigError(f"{owner}: target_epsilon={target_epsilon!r} must be a positive finite number (e.g. 3)")
    d = default_delta(n_records) if delta is None else float(delta)
    if not 0 < d < 1.0 / n_records:
        raise ConfigError(
            f"{owner}: delta={d:g} must be in (0, 1/n) = (0, {1.0 / n_records:.3g}) for n={n_records} training "
            f"records (a delta of 1/n allows leaking one record outright); leave delta=None for 1/(10 n)"
        )
    return d


@functools.lru_cache(maxsize=64)
def _calibrate(target_epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str) -> float:
    """Opacus's ``get_noise_multiplier`` (cached: a seconds-long search, repeated by refits with the same settings)."""
    from opacus.accountants.utils import get_noise_multiplier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "optimal order is the largest alpha": still a valid bound
        return float(
            get_noise_multiplier(
                target_epsilon=target_epsilon,
                target_delta=delta,
                sample_rate=sample_rate,
                steps=steps,
                accountant=accountant,
                epsilon_tolerance=max(0.01, 0.005 * target_epsilon),
            )
        )


@dataclass
class DPSGD:
    """Poisson-sampled DP-SGD with Opacus accounting (module notes).

    ``private=False`` gives the same sampling and averaging with no clipping and no noise (the non-private twin).
    Use :meth:`sample` for each step's records, :meth:`add` for each chunk of per-record gradients, then
    :meth:`noisy_gradients` once per step.
    """

    n_records: int
    batch_size: int
    steps: int
    private: bool = True
    max_grad_norm: float = 1.0
    noise_multiplier: float = 0.0
    delta: float = 0.0
    accountant_name: str = "rdp"
    #: fraction of sampled records whose gradient was clipped, per step
    clipped_fraction: list[float] = field(default_factory=list)
    _accountant: Any = None
    _shared: dict[str, Any] = field(default_factory=dict)
    _rows: dict[str, list[tuple[Any, Any]]] = field(default_factory=dict)
    _n_clipped: int = 0
    _n_seen: int = 0

    @property
    def sample_rate(self) -> float:
        return min(1.0, self.batch_size / self.n_records)

    @classmethod
    def create(
        cls,
        owner: str,
        *,
        n_records: int,
        batch_size: int,
        epochs: int,
        private: bool,
        target_epsilon: float | None,
        noise_multiplier: float | None,
        delta: float | None,
        max_grad_norm: float,
        accountant: str,
    ) -> DPSGD:
        """The DP-SGD state of a fit: checks the settings and calibrates ``sigma`` to ``target_epsilon``.

        A ``batch_size`` above the number of records is taken as all of them (sampling rate 1: every step sees
        every record, so the sampling no longer amplifies privacy; the accountant is told so)."""
        batch_size = max(1, min(int(batch_size), int(n_records)))
        steps = int(epochs) * max(1, math.ceil(n_records / batch_size))
        if not private:
            if n_records < 1:
                raise DataError(f"{owner}: training needs at least one interaction")
            return cls(int(n_records), min(int(batch_size), int(n_records)), steps, private=False)
        require_opacus()
        from opacus.accountants import create_accountant

        d = check_privacy(
            owner,
            target_epsilon=target_epsilon,
            noise_multiplier=noise_multiplier,
            delta=delta,
            n_records=n_records,
            batch_size=batch_size,
        )
        q = batch_size / n_records
        if noise_multiplier is None:
            assert target_epsilon is not None
            try:
                sigma = _calibrate(float(target_epsilon), d, q, steps, accountant)
            except ValueError as exc:
                raise ConfigError(
                    f"{owner}: no noise level reaches target_epsilon={target_epsilon} at delta={d:g} "
                    f"({exc}); raise target_epsilon or delta, or lower epochs or batch_size"
                ) from exc
        else:
            sigma = float(noise_multiplier)
        out = cls(int(n_records), int(batch_size), steps, True, float(max_grad_norm), sigma, d, accountant)
        out._accountant = create_accountant(mechanism=accountant)
        return out

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One step's records: Poisson sampling (each record independently with probability ``q``)."""
        return np.flatnonzero(rng.random(self.n_records) < self.sample_rate)

    # ------------------------------------------------------------------ per-record gradients
    def add(
        self,
        shared: Mapping[str, torch.Tensor],
        rows: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    ) -> torch.Tensor:
        """Clip and accumulate one chunk of ``B`` per-record gradients; returns their norms before clipping.

        ``shared[name]`` is ``[B, *param.shape]`` (a parameter every record reaches), ``rows[name]`` is
        ``(grad [B, m, *row_shape], index int64 [B, m])``: the gradient of the ``m`` table rows the record
        touches (a row listed twice is merged before the norm is taken).
        """
        import torch

        sq = None
        for g in shared.values():
            part = g.reshape(g.shape[0], -1).pow(2).sum(1)
            sq = part if sq is None else sq + part
        for g, idx in rows.values():
            flat = g.reshape(g.shape[0], g.shape[1], -1)
            gram = flat @ flat.transpose(1, 2)  # [B, m, m]
            same = (idx[:, :, None] == idx[:, None, :]).to(gram.dtype)
            part = (gram * same).sum((1, 2))
            sq = part if sq is None else sq + part
        if sq is None:
            raise ConfigError("DPSGD.add got no gradients")
        norms = sq.clamp_min(0).sqrt()
        if self.private:
            factor = (self.max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
            self._n_clipped += int((norms > self.max_grad_norm).sum())
        else:
            factor = torch.ones_like(norms)
        self._n_seen += int(norms.shape[0])
        for name, g in shared.items():
            s = torch.einsum("b,b...->...", factor, g)
            self._shared[name] = s if name not in self._shared else self._shared[name] + s
        for name, (g, idx) in rows.items():
            scaled = g * factor.reshape(-1, *([1] * (g.dim() - 1)))
            self._rows.setdefault(name, []).append((scaled.reshape(-1, *g.shape[2:]), idx.reshape(-1)))
        return norms

    def noisy_gradients(self, params: Mapping[str, torch.Tensor], generator: torch.Generator) -> dict[str, Any]:
        """The step's gradient of every parameter: clipped sum + noise, over the expected batch size ``q n``.

        Parameters not reached by any record still get noise.  Records the step in the accountant.
        """
        import torch

        scale = 1.0 / (self.sample_rate * self.n_records)
        std = self.noise_multiplier * self.max_grad_norm if self.private else 0.0
        out: dict[str, Any] = {}
        for name, p in params.items():
            g = torch.zeros_like(p)
            if name in self._shared:
                g += self._shared[name]
            for rows, idx in self._rows.get(name, []):
                g.index_add_(0, idx, rows.to(g.dtype))
            if std > 0:
                g += torch.normal(0.0, std, size=g.shape, generator=generator, dtype=g.dtype)
            out[name] = g * scale
        if self.private and self._accountant is not None:
            self._accountant.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)
        self.clipped_fraction.append(self._n_clipped / self._n_seen if self._n_seen else 0.0)
        self._shared, self._rows, self._n_clipped, self._n_seen = {}, {}, 0, 0
        return out

    def spent(self) -> tuple[float, float]:
        """``(epsilon, delta)`` spent so far (``(inf, 0)`` for a non-private fit)."""
        if not self.private or self._accountant is None:
            return math.inf, 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            eps = float(self._accountant.get_epsilon(delta=self.delta)) if self._accountant.history else 0.0
        return eps, float(self.delta)


def set_privacy_spent(model: Any, dp: DPSGD) -> None:
    """Store the spent budget on ``model`` as ``privacy_epsilon_``, ``privacy_delta_``, ``noise_multiplier_``."""
    eps, delta = dp.spent()
    model.privacy_epsilon_ = eps
    model.privacy_delta_ = delta
    model.noise_multiplier_ = float(dp.noise_multiplier)
    model.clipped_fraction_ = np.asarray(dp.clipped_fraction, dtype=np.float64)


class PrivacyReport:
    """Mixin: ``privacy_spent_ = (epsilon, delta)`` of a fitted model (``(inf, 0.0)`` when it was not private)."""

    @property
    def privacy_spent_(self) -> tuple[float, float]:
        eps = getattr(self, "privacy_epsilon_", None)
        if eps is None:
            return math.inf, 0.0
        return float(eps), float(getattr(self, "privacy_delta_", 0.0))


# ---------------------------------------------------------------------- the private factor model
def _bpr_record_grads(
    pu: torch.Tensor, vi: torch.Tensor, vj: torch.Tensor, bi: torch.Tensor, bj: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-record gradients of ``-ln sigma(pu . (vi - vj) + bi - bj)`` (closed form): ``(d pu, d vi, d vj, d b)``."""
    import torch

    x = (pu * (vi - vj)).sum(1) + bi - bj
    z = torch.sigmoid(-x)  # -dl/dx
    g_u = -z[:, None] * (vi - vj)
    g_i = -z[:, None] * pu
    g_b = torch.stack([-z, z], dim=1)  # [B, 2]
    return g_u, g_i, -g_i, g_b


class DPMF(PrivacyReport, BiasedDotScores, Recommender):
    """Matrix factorisation with item biases, BPR loss, trained by DP-SGD (record-level differential privacy).

    Score ``x_ui = b_i + U_u . V_i`` (as :class:`~fusionrec.models.mf.bpr.BPR`).  Each record ``(u, i)`` of a
    Poisson-sampled step, with one negative ``j`` drawn uniformly from the catalogue, contributes the gradient of
    ``-ln sigma(x_ui - x_uj)`` on the rows ``U_u, V_i, V_j, b_i, b_j``; it is clipped to ``max_grad_norm``,
    Gaussian noise is added to every parameter and Adam (``weight_decay = reg``) applies it (module
    notes).  ``private=False`` trains the identical model without clipping or noise.

    Parameters
    ----------
    n_factors, epochs, batch_size, lr, reg, seed
        Model and optimisation (``batch_size`` is the *expected* Poisson batch).
    private
        Train with DP-SGD (default True).
    target_epsilon
        The epsilon to reach after ``epochs`` (default 8); the noise multiplier is calibrated to it by Opacus.
    delta
        Target delta; ``None``: ``1 / (10 n)`` for ``n`` training records (must be below ``1 / n``).
    max_grad_norm
        Per-record clipping norm ``C``.
    noise_multiplier
        A fixed ``sigma``; when given, ``target_epsilon`` is ignored and the spent epsilon is reported.
    accountant
        ``"rdp"`` (default) or ``"prv"``: the Opacus accountant.

    Attributes
    ----------
    user_factors_, item_factors_, item_bias_
        As BPR.
    privacy_spent_
        ``(epsilon, delta)`` spent (``(inf, 0.0)`` when not private); also ``privacy_epsilon_``,
        ``privacy_delta_``, ``noise_multiplier_`` and ``clipped_fraction_`` (per step).
    loss_history_
        Mean BPR loss of each epoch's sampled records.
    """

    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_factors": [*POSITIVE_INT],
        "epochs": [*POSITIVE_INT],
        "batch_size": [*POSITIVE_INT],
        "lr": [*POSITIVE],
        "reg": [Interval(float, 0, None)],
        "seed": [*SEED],
        **PRIVACY_PARAMS,
    }
    #: the library's one vocabulary (the former names still work, with a FutureWarning)
    _renamed_params: ClassVar[dict[str, str]] = {"learning_rate": "lr", "regularization": "reg"}

    def __init__(
        self,
        *,
        n_factors: int = 32,
        epochs: int = 20,
        batch_size: int = 1024,
        lr: float = 0.01,
        reg: float = 0.0,
        private: bool = True,
        target_epsilon: float | None = 8.0,
        delta: float | None = None,
        max_grad_norm: float = 1.0,
        noise_multiplier: float | None = None,
        accountant: str = "rdp",
        seed: int = 0,
    ) -> None:
        self.n_factors = n_factors
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.reg = reg
        self.private = private
        self.target_epsilon = target_epsilon
        self.delta = delta
        self.max_grad_norm = max_grad_norm
        self.noise_multiplier = noise_multiplier
        self.accountant = accountant
        self.seed = seed

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        import torch

        from fusionrec.models.graph import torch_threads
        from fusionrec.models.mf.bpr import INIT_STD

        m = train.matrix.tocsr()
        users = np.repeat(np.arange(train.n_users, dtype=np.int64), np.diff(m.indptr))
        items = m.indices.astype(np.int64)
        n = len(items)
        dp = DPSGD.create(
            type(self).__name__,
            n_records=n,
            batch_size=int(self.batch_size),
            epochs=int(self.epochs),
            private=bool(self.private),
            target_epsilon=self.target_epsilon,
            noise_multiplier=self.noise_multiplier,
            delta=self.delta,
            max_grad_norm=float(self.max_grad_norm),
            accountant=self.accountant,
        )
        rng = np.random.default_rng(self.seed)
        f = int(self.n_factors)
        with torch.random.fork_rng(devices=[]), torch_threads(1):
            gen = torch.Generator().manual_seed(int(self.seed))
            params = {
                "U": torch.from_numpy(rng.standard_normal((train.n_users, f), dtype=np.float32) * INIT_STD),
                "V": torch.from_numpy(rng.standard_normal((train.n_items, f), dtype=np.float32) * INIT_STD),
                "b": torch.zeros(train.n_items, 1),
            }
            for p in params.values():
                p.requires_grad_(True)
            opt = torch.optim.Adam(params.values(), lr=float(self.lr), weight_decay=float(self.reg))
            steps_per_epoch = dp.steps // int(self.epochs)
            losses = []
            for _ in progress(range(int(self.epochs)), total=int(self.epochs), desc="DPMF"):
                total, count = 0.0, 0
                for _ in range(steps_per_epoch):
                    sel = dp.sample(rng)
                    u = torch.from_numpy(users[sel])
                    i = torch.from_numpy(items[sel])
                    j = torch.from_numpy(rng.integers(0, train.n_items, size=len(sel)))
                    with torch.no_grad():
                        U, V, b = params["U"], params["V"], params["b"][:, 0]
                        g_u, g_i, g_j, g_b = _bpr_record_grads(U[u], V[i], V[j], b[i], b[j])
                        ij = torch.stack([i, j], dim=1)
                        dp.add(
                            {},
                            {
                                "U": (g_u[:, None, :], u[:, None]),
                                "V": (torch.stack([g_i, g_j], dim=1), ij),
                                "b": (g_b[:, :, None], ij),
                            },
                        )
                        x = (U[u] * (V[i] - V[j])).sum(1) + b[i] - b[j]
                        total += float(torch.nn.functional.softplus(-x).sum())
                        count += len(sel)
                        grads = dp.noisy_gradients({k: p.detach() for k, p in params.items()}, gen)
                    for k, p in params.items():
                        p.grad = grads[k]
                    opt.step()
                losses.append(total / max(count, 1))
        U_ = params["U"].detach().numpy().astype(np.float32, copy=True)
        V_ = params["V"].detach().numpy().astype(np.float32, copy=True)
        if not (np.isfinite(U_).all() and np.isfinite(V_).all()):
            raise ConfigError("DPMF diverged (non-finite factors); lower lr or raise max_grad_norm")
        self.user_factors_ = U_
        self.item_factors_ = V_
        self.item_bias_ = params["b"].detach().numpy()[:, 0].astype(np.float32, copy=True)
        self.loss_history_ = np.asarray(losses, dtype=np.float64)
        set_privacy_spent(self, dp)


# ---------------------------------------------------------------------- per-record gradients of a torch network
def vmap_record_grads(
    loss_fn: Callable[..., torch.Tensor],
    tables: Mapping[str, torch.Tensor],
    shared: Mapping[str, torch.Tensor],
    inputs: tuple[Any, ...],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Per-record gradients ``(d tables [B, ...], d shared [B, ...])`` of ``loss_fn(tables_b, shared, *inputs_b)``.

    ``tables[name]`` are per-record tiny tables ``[B, m, ...]`` (the rows record ``b`` touches), ``shared`` the
    parameters every record uses, ``inputs`` per-record tensors ``[B, ...]``.  ``torch.func.vmap`` of
    ``torch.func.grad`` (what Opacus's functorch grad sampler uses), with dropout drawn per record.
    """
    from torch.func import grad, vmap

    g = vmap(
        grad(loss_fn, argnums=(0, 1)),
        in_dims=(0, None, *([0] * len(inputs))),
        randomness="different",
    )
    d_tables, d_shared = g(dict(tables), dict(shared), *inputs)
    return d_tables, d_shared


# ---------------------------------------------------------------------- DeepFusion's private fit
#: FusionNet embedding tables whose per-record gradients are taken on the touched rows only
_USER_TABLES = ("user_emb.weight", "user_bias.weight")
_ITEM_TABLES = ("item_emb.weight", "item_bias.weight")


def fusion_record_grads(
    net: Any,
    loss_kind: str,
    users: torch.Tensor,
    items: torch.Tensor,
    dense: Mapping[str, torch.Tensor],
    tokens: torch.Tensor | None,
    mask: torch.Tensor,
    target: torch.Tensor,
) -> tuple[dict[str, torch.Tensor], dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Per-record gradients of a :class:`~fusionrec.models.fusion.model.FusionNet` loss, for :meth:`DPSGD.add`.

    Record ``b`` is user ``users[b]`` with items ``items[b] [m]`` (the positive first, then its negatives;
    ``m = 1`` for ``mse``), their ``dense`` rows ``[B, m, F]``, ``tokens [B, m, L]`` and ``mask [B, m, M]``, and
    ``target [B, m]`` (the rating for ``mse``, 1 then 0s for ``bce``; unused for ``bpr``).  Returns
    ``(shared, rows)``: ``shared[name] [B, *shape]`` for the network weights and ``rows[name] = (grad [B, k,
    *row], index [B, k])`` for the user and item table rows the record touches.
    """
    import torch
    from torch import nn
    from torch.func import functional_call

    has_text = tokens is not None

    class Scorer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, u: Any, it: Any, d: Any, tok: Any, msk: Any) -> Any:
            vec, bias = self.net.item_vectors(it, d, tok if has_text else None, msk)
            return self.net(u, vec, bias)

    scorer = Scorer()
    named = {k[len("net.") :]: p.detach() for k, p in scorer.named_parameters()}
    user_tables = [k for k in _USER_TABLES if k in named]
    item_tables = [k for k in _ITEM_TABLES if k in named]

    def record_loss(tables: dict[str, Any], shared: dict[str, Any], u: Any, it: Any, d: Any, tok: Any, msk: Any,
                    y: Any) -> Any:  # fmt: skip
        params = {f"net.{k}": v for k, v in {**shared, **tables}.items()}
        s = functional_call(scorer, params, (u, it, d, tok, msk))
        if loss_kind == "mse":
            return ((s - y) ** 2).sum()
        if loss_kind == "bpr":
            return -torch.nn.functional.logsigmoid(s[0] - s[1])
        return torch.nn.functional.binary_cross_entropy_with_logits(s, y)

    b, m = items.shape
    tables = {k: named[k][users][:, None] for k in user_tables}
    tables.update({k: named[k][items] for k in item_tables})
    shared = {k: v for k, v in named.items() if k not in tables}
    local_items = torch.arange(m).expand(b, m)
    local_users = torch.zeros((b, m), dtype=torch.int64)
    tok = tokens if tokens is not None else torch.zeros((b, m, 1), dtype=torch.int64)
    with warnings.catch_warnings():  # LSTM text towers: torch's vmap falls back to a loop (slower, still exact)
        warnings.filterwarnings("ignore", message="There is a performance drop", category=UserWarning)
        d_tables, d_shared = vmap_record_grads(
            record_loss, tables, shared, (local_users, local_items, dict(dense), tok, mask, target)
        )
    rows = {k: (d_tables[k], users[:, None]) for k in user_tables}
    rows.update({k: (d_tables[k], items) for k in item_tables})
    return d_shared, rows


def fit_fusion_private(
    model: Any,
    net: Any,
    opt: Any,
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
    inputs: tuple[Mapping[str, torch.Tensor], torch.Tensor | None, torch.Tensor],
    rng: np.random.Generator,
    after_epoch: Callable[[], float] | None = None,
    chunk: int = 256,
) -> list[float]:
    """Train :class:`~fusionrec.models.fusion.model.DeepFusion`'s network by DP-SGD for ``model.epochs`` epochs.

    ``data`` is ``(users, items, values)`` of the training records, ``inputs`` ``(dense, tokens, mask)`` over the
    items.  Every record's loss (``bpr``: one uniform negative; ``bce``: ``negatives`` uniform negatives; ``mse``:
    the squared error) is differentiated with respect to the shared network weights and to the rows of the
    user and item tables it touches (:func:`fusion_record_grads`); Opacus calibrates and accounts the noise.  Sets
    the privacy attributes on ``model``; returns ``after_epoch()`` of each epoch (the validation history; it never
    stops the fit).
    """
    import torch

    users, items, values = data
    dense, tokens, mask = inputs
    n_items = int(mask.shape[0])
    loss_kind = model.loss
    n_neg = 0 if loss_kind == "mse" else (1 if loss_kind == "bpr" else int(model.negatives))
    dp = DPSGD.create(
        type(model).__name__,
        n_records=len(users),
        batch_size=int(model.batch_size),
        epochs=int(model.epochs),
        private=True,
        target_epsilon=model.target_epsilon,
        noise_multiplier=model.noise_multiplier,
        delta=model.delta,
        max_grad_norm=float(model.max_grad_norm),
        accountant=model.accountant,
    )
    named = dict(net.named_parameters())
    gen = torch.Generator().manual_seed(int(model.seed))
    steps_per_epoch = dp.steps // int(model.epochs)
    m = 1 + n_neg
    history: list[float] = []
    for _ in progress(range(int(model.epochs)), total=int(model.epochs), desc="DeepFusion (DP-SGD)"):
        net.train()
        for _ in range(steps_per_epoch):
            sel = dp.sample(rng)
            for start in range(0, len(sel), chunk):
                part = sel[start : start + chunk]
                b = len(part)
                it = np.empty((b, m), dtype=np.int64)
                it[:, 0] = items[part]
                if n_neg:
                    it[:, 1:] = rng.integers(0, n_items, size=(b, n_neg))
                it_t = torch.from_numpy(it)
                if loss_kind == "mse":
                    y = torch.from_numpy(values[part])[:, None]
                else:
                    y = torch.zeros((b, m))
                    y[:, 0] = 1.0
                shared, rows = fusion_record_grads(
                    net,
                    loss_kind,
                    torch.from_numpy(users[part]),
                    it_t,
                    {k: x[it_t] for k, x in dense.items()},
                    tokens[it_t] if tokens is not None else None,
                    mask[it_t],
                    y,
                )
                dp.add(shared, rows)
            grads = dp.noisy_gradients({k: p.detach() for k, p in named.items()}, gen)
            for k, p in named.items():
                p.grad = grads[k]
            opt.step()
        if after_epoch is not None:
            history.append(float(after_epoch()))
    set_privacy_spent(model, dp)
    return history
