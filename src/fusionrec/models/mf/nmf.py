"""Non-negative matrix factorisation of ratings (Luo et al. 2014), as Surprise's ``NMF``."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from fusionrec.data.interactions import Interactions
from fusionrec.errors import ConfigError
from fusionrec.models._params import BOOL, NONNEGATIVE, NONNEGATIVE_INT, POSITIVE_INT, SEED, Interval
from fusionrec.models.base import SideInfo
from fusionrec.models.factors import FactorSpec
from fusionrec.models.mf.svd import FactorRatingModel, _explicit_entries

__all__ = ["NMF"]


class NMF(FactorRatingModel):
    """Rating NMF with multiplicative updates (Luo, Xia, Zhu, Zhu & Shang 2014; Surprise's ``NMF``).

    ``r_hat_ui = q_i . p_u`` with ``p_u, q_i >= 0`` (``biased=True``: ``mu + b_u + b_i + q_i . p_u``),
    minimising ``sum (r_ui - r_hat_ui)^2 + reg_pu sum_u |I_u| |p_u|^2 + reg_qi sum_i |U_i| |q_i|^2``
    (regularisation weighted by the number of ratings).  Each epoch

    * visits the ratings (CSR order) accumulating ``sum_i q_if r_ui`` and ``sum_i q_if r_hat_ui`` per user
      (and the item analogues), with an SGD step on the biases when ``biased``;
    * then updates ``p_uf <- p_uf sum_i q_if r_ui / (sum_i q_if r_hat_ui + |I_u| reg_pu p_uf)`` and the
      same for ``q_if``, which keeps the factors non-negative.

    Surprise updates ``p`` and ``q`` from the same pass.  That leaves the overall scale free to
    oscillate: if ``r_hat = c r`` on every rating, one epoch maps ``c`` to ``1 / c``, so the fit depends on
    the initial scale matching the ratings (the default Uniform(0, 1) x 15 factors gives ``r_hat`` about
    3.75 at the start).  ``alternating=True`` recomputes the estimates with the new ``p`` before the ``q``
    step (Lee & Seung's order, one more pass per epoch), which removes that dependence.

    Pairs whose user or item has no training rating get ``mu + b_u + b_i``; predictions are clipped to
    the training rating range.

    Parameters
    ----------
    n_factors, epochs
        Rank and number of epochs (Surprise's defaults: 15, 50; ``epochs`` was ``n_epochs``, Surprise's name).
    biased
        Add the global mean and SGD-trained biases (Surprise warns it overfits easily).
    reg_pu, reg_qi, reg_bu, reg_bi
        L2 weights.
    lr_bu, lr_bi
        Bias learning rates.
    init_low, init_high
        Factors start ~ Uniform(init_low, init_high); ``init_low`` must be >= 0.
    alternating
        Update ``q`` from estimates recomputed with the new ``p`` (``False``: Surprise's simultaneous step).
    seed
        Seeds the initial factors.
    """

    #: tuning ranges (:mod:`fusionrec.tuning`): name -> (kind, low, high[, "log"]) or ("categorical", [choices])
    _search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "n_factors": ("int", 5, 100, "log"),
        "epochs": ("int", 10, 100),
        "reg_pu": ("float", 1e-3, 0.5, "log"),
        "reg_qi": ("float", 1e-3, 0.5, "log"),
    }

    factor_spec = FactorSpec(
        user="user_vectors_", item="item_factors_", user_bias="user_bias_", item_bias="item_bias_",
        global_bias="offset_", fold_in="ridge", regularization="reg_pu", fit_user_bias="biased",
        reg_per_rating=True, nonnegative=True,
    )  # fmt: skip

    _renamed_params: ClassVar[dict[str, str]] = {"n_epochs": "epochs"}
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_factors": [*POSITIVE_INT],
        "epochs": [*NONNEGATIVE_INT],
        "biased": [*BOOL],
        **{name: [*NONNEGATIVE] for name in ("reg_pu", "reg_qi", "reg_bu", "reg_bi", "lr_bu", "lr_bi", "init_low")},
        "init_high": [Interval(float, None, None)],
        "alternating": [*BOOL],
        "seed": [*SEED],
    }

    def __init__(
        self,
        *,
        n_factors: int = 15,
        epochs: int = 50,
        biased: bool = False,
        reg_pu: float = 0.06,
        reg_qi: float = 0.06,
        reg_bu: float = 0.02,
        reg_bi: float = 0.02,
        lr_bu: float = 0.005,
        lr_bi: float = 0.005,
        init_low: float = 0.0,
        init_high: float = 1.0,
        alternating: bool = False,
        seed: int | None = 0,
    ) -> None:
        self.n_factors = n_factors
        self.epochs = epochs
        self.biased = biased
        self.reg_pu = reg_pu
        self.reg_qi = reg_qi
        self.reg_bu = reg_bu
        self.reg_bi = reg_bi
        self.lr_bu = lr_bu
        self.lr_bi = lr_bi
        self.init_low = init_low
        self.init_high = init_high
        self.alternating = alternating
        self.seed = seed

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        from fusionrec.models._kernels.sgd import nmf_epoch

        if not self.init_high > self.init_low:
            raise ConfigError(f"init_high ({self.init_high}) must exceed init_low ({self.init_low})")
        users, items, ratings = _explicit_entries(train)
        if ratings.min() < 0:
            raise ConfigError("NMF needs non-negative ratings; shift the rating scale to start at 0 or above")
        self._set_scale(train, ratings)
        rng = np.random.default_rng(self.seed)
        P = rng.uniform(self.init_low, self.init_high, size=(train.n_users, self.n_factors))
        Q = rng.uniform(self.init_low, self.init_high, size=(train.n_items, self.n_factors))
        bu = np.zeros(train.n_users)
        bi = np.zeros(train.n_items)
        biased = bool(self.biased)
        ucount = train.user_counts().astype(np.float64)
        icount = train.item_counts().astype(np.float64)
        sse = 0.0
        for _ in range(self.epochs):
            sse = nmf_epoch(
                users, items, ratings, ucount, icount, self.global_mean_, bu, bi, P, Q,
                float(self.lr_bu), float(self.lr_bi), float(self.reg_bu), float(self.reg_bi),
                float(self.reg_pu), float(self.reg_qi), biased, bool(self.alternating),
            )  # fmt: skip
        self.offset_ = self.global_mean_ if biased else 0.0
        self.train_rmse_ = float(np.sqrt(sse / len(ratings))) if self.epochs else float("nan")
        self.user_bias_ = bu.astype(np.float32)
        self.item_bias_ = bi.astype(np.float32)
        self.user_vectors_ = P.astype(np.float32)
        self.item_factors_ = Q.astype(np.float32)

    @property
    def user_factors_(self) -> np.ndarray:
        """The non-negative user factors ``p_u`` (same array as ``user_vectors_``)."""
        return self.user_vectors_
