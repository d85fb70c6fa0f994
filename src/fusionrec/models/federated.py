"""Federated matrix factorisation (:class:`FedMF`): clients keep their interactions and user vectors, the server
averages item factors (FedAvg), simulated with Flower or in-process.

Protocol (one round; Ammad-ud-din et al. 2019, "Federated collaborative filtering", with BPR):

1. the server samples ``fraction_fit`` of the clients (a client is one user, or a shard of users with
   ``clients=n``) and sends them the item factors ``V [I, f]`` and item biases ``b [I]``;
2. each sampled client runs ``local_epochs`` epochs of BPR (Adagrad, as :class:`~fusionrec.models.mf.bpr.BPR`)
   over its *own* interactions only, updating its user vector(s) -- which stay on the client across rounds --
   and its local copy of ``V, b``; it returns ``[V', b']`` and its number of interactions ``n_k``;
3. the server aggregates FedAvg-style, ``avg = sum_k n_k [V'_k, b'_k] / sum_k n_k`` (Flower's
   ``flwr.server.strategy.aggregate.aggregate``), and moves ``[V, b] += server_lr (avg - [V, b])``
   (``server_lr = 1`` is plain FedAvg; a larger server step is FedAvg with a server learning rate, Reddi et al.
   2021, which undoes the dilution of each client's item update by the others' weights).

The server never receives a user vector, an interaction or a per-user count other than ``n_k`` (tests record
what it receives).  The fitted model holds every client's user vector only because the simulation plays all
clients on one machine (``score`` needs them); in a deployment each client scores locally with the broadcast
item factors.  FedAvg alone is not differential privacy: item-factor updates can leak a client's items (secure
aggregation or DP noise on the updates would be needed; :mod:`fusionrec.models.private` is the central-DP
option).

Engines: ``"inprocess"`` (default; the same client and server code called in a loop, streaming the weighted
average so that per-user clients fit in memory) and ``"flower"`` (``flwr.simulation.run_simulation`` with a
``ServerApp`` running a FedAvg strategy and a ``ClientApp`` per client on Ray; clients keep their user vectors
in their Flower ``Context.state`` and write them to their own "device" directory at the last round).  Both give
the same model for the same seed (a test checks it).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from fusionrec._progress import progress
from fusionrec.data.interactions import Interactions
from fusionrec.errors import ConfigError
from fusionrec.models._params import NONNEGATIVE, POSITIVE, POSITIVE_INT, SEED, Interval, Options
from fusionrec.models.base import Recommender, SideInfo
from fusionrec.models.mf.bpr import BiasedDotScores

__all__ = ["ENGINES", "FedMF", "FedMFClient", "fedavg"]

ENGINES = ("inprocess", "flower")


def require_flower() -> None:
    """Raise :class:`ConfigError` with the install command when Flower is absent."""
    try:
        import flwr  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "engine='flower' needs Flower: pip install 'fusionrec[federated]' (or use engine='inprocess')"
        ) from exc


def fedavg(results: list[tuple[list[np.ndarray], int]]) -> list[np.ndarray]:
    """FedAvg: the ``n_k``-weighted mean of the clients' arrays (Flower's ``aggregate`` when Flower is installed)."""
    try:
        with warnings.catch_warnings():  # flwr imports typer, which trips click's deprecation warnings
            warnings.simplefilter("ignore", DeprecationWarning)
            from flwr.server.strategy.aggregate import aggregate
    except ImportError:
        total = sum(n for _, n in results)
        return [np.asarray(sum(arrs[k] * n for arrs, n in results)) / total for k in range(len(results[0][0]))]
    return [np.asarray(a) for a in aggregate(results)]


class FedMFClient:
    """One client: its users' interactions (rows of the training matrix), user vectors and Adagrad state.

    :meth:`fit` is the client's half of a round (Flower ``NumPyClient.fit``'s signature): it receives
    ``[V, b]`` and returns ``([V', b'], n_k, {})``; the user vectors never leave the object.
    """

    def __init__(self, cid: int, users: np.ndarray, matrix: sp.csr_matrix, model: FedMF) -> None:
        self.cid = int(cid)
        self.users = np.asarray(users, dtype=np.int64)
        self.matrix = sp.csr_matrix(matrix[self.users])
        self.matrix.sort_indices()
        self.n_factors = int(model.n_factors)
        self.lr = float(model.local_lr)
        self.reg = float(model.reg)
        self.epochs = int(model.local_epochs)
        self.seed = int(model.seed)
        rng = np.random.default_rng([self.seed, 1, self.cid])
        from fusionrec.models.mf.bpr import INIT_STD

        self.user_factors = (rng.standard_normal((len(self.users), self.n_factors)) * INIT_STD).astype(np.float32)
        self.user_grad2 = np.zeros_like(self.user_factors)

    @property
    def n_examples(self) -> int:
        return int(self.matrix.nnz)

    def state(self) -> list[np.ndarray]:
        return [self.user_factors, self.user_grad2]

    def set_state(self, arrays: list[np.ndarray]) -> None:
        self.user_factors = np.array(arrays[0], dtype=np.float32)
        self.user_grad2 = np.array(arrays[1], dtype=np.float32)

    def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> tuple[list[np.ndarray], int, dict[str, Any]]:
        """``local_epochs`` BPR epochs over this client's interactions; returns the updated item side."""
        from fusionrec.models._kernels.bpr import bpr_epoch_adagrad
        from fusionrec.models.mf.bpr import eligible_entries, sample_triples

        V = np.array(parameters[0], dtype=np.float32)
        b = np.array(np.asarray(parameters[1]).reshape(-1), dtype=np.float32)  # sent as [I, 1], the kernel wants [I]
        m = self.matrix
        eligible, n = eligible_entries(m)
        if n == 0:
            return [V, b[:, None]], 0, {}
        rng = np.random.default_rng([self.seed, 2, int(config.get("round", 0)), self.cid])
        GV, Gb = np.zeros_like(V), np.zeros_like(b)
        for _ in range(self.epochs):
            users, pos, neg = sample_triples(m, n, rng, eligible)
            bpr_epoch_adagrad(self.user_factors, V, b, self.user_grad2, GV, Gb, users, pos, neg, self.lr, self.reg)
        return [V, b[:, None]], n, {}


class FedMF(BiasedDotScores, Recommender):
    """Federated BPR matrix factorisation: FedAvg of item factors, user vectors kept by the clients (module notes).

    Score ``x_ui = b_i + U_u . V_i`` (as :class:`~fusionrec.models.mf.bpr.BPR`, its centralised twin: the same
    loss, optimiser and initialisation, trained on all data in one place).

    Parameters
    ----------
    n_factors
        Latent dimension.
    rounds
        Federated rounds.
    clients
        ``None``: one client per user; ``n``: users split into ``n`` shards (a shard of users is one client).
    fraction_fit
        Fraction of the clients sampled each round.
    local_epochs, local_lr, reg
        Each client's BPR epochs per round over its own data, Adagrad step and L2 (as BPR's).
    server_lr
        The server's step towards the FedAvg average (1 = plain FedAvg).
    engine
        ``"inprocess"`` (default) or ``"flower"`` (Flower simulation on Ray; needs ``fusionrec[federated]``).
    seed
        Seeds the initial factors, the client sampling and every client's negatives.

    Attributes
    ----------
    user_factors_, item_factors_, item_bias_
        As BPR (the user vectors gathered from the simulated clients, see the module notes).
    received_shapes_
        ``int64 [k, 2]``: the distinct array shapes the server received from clients (``[n_items, f]`` and
        ``[n_items, 1]``; never a user-sized array).
    round_history_
        ``int64 [rounds]``: the number of interactions aggregated each round.
    """

    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_factors": [*POSITIVE_INT],
        "rounds": [*POSITIVE_INT],
        "clients": [*POSITIVE_INT, None],
        "fraction_fit": [Interval(float, 0, 1, closed="right")],
        "local_epochs": [*POSITIVE_INT],
        "local_lr": [*POSITIVE],
        "reg": [*NONNEGATIVE],
        "server_lr": [*POSITIVE],
        "engine": [Options(ENGINES)],
        "seed": [*SEED],
    }
    #: the library's one vocabulary (the former name still works, with a FutureWarning)
    _renamed_params: ClassVar[dict[str, str]] = {"regularization": "reg"}

    def __init__(
        self,
        *,
        n_factors: int = 64,
        rounds: int = 50,
        clients: int | None = None,
        fraction_fit: float = 1.0,
        local_epochs: int = 1,
        local_lr: float = 0.05,
        reg: float = 0.001,
        server_lr: float = 1.0,
        engine: str = "inprocess",
        seed: int = 0,
    ) -> None:
        self.n_factors = n_factors
        self.rounds = rounds
        self.clients = clients
        self.fraction_fit = fraction_fit
        self.local_epochs = local_epochs
        self.local_lr = local_lr
        self.reg = reg
        self.server_lr = server_lr
        self.engine = engine
        self.seed = seed

    # ------------------------------------------------------------------ clients
    def _partition(self, n_users: int) -> list[np.ndarray]:
        """Users of each client: one per user, or ``clients`` contiguous shards of a seeded permutation."""
        if self.clients is None:
            return [np.array([u], dtype=np.int64) for u in range(n_users)]
        n = int(self.clients)
        if n > n_users:
            raise ConfigError(f"FedMF: clients={n} exceeds the {n_users} users; use clients=None (one per user)")
        order = np.random.default_rng([int(self.seed), 0]).permutation(n_users)
        return [np.sort(part) for part in np.array_split(order, n)]

    def _sampled(self, n_clients: int, rnd: int) -> np.ndarray:
        """The clients of round ``rnd`` (all when ``fraction_fit == 1``)."""
        k = max(1, round(float(self.fraction_fit) * n_clients))
        if k >= n_clients:
            return np.arange(n_clients)
        return np.sort(np.random.default_rng([int(self.seed), 3, rnd]).choice(n_clients, k, replace=False))

    def _server_step(self, current: list[np.ndarray], results: list[tuple[list[np.ndarray], int]]) -> list[np.ndarray]:
        results = [(arrs, n) for arrs, n in results if n > 0]
        if not results:
            return current
        avg = fedavg(results)
        lr = float(self.server_lr)
        return [(c + lr * (a - c)).astype(np.float32) for c, a in zip(current, avg, strict=True)]

    # ------------------------------------------------------------------ fitting
    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        from fusionrec.models.mf.bpr import INIT_STD

        m = sp.csr_matrix(train.matrix, copy=True)
        m.sum_duplicates()
        m.eliminate_zeros()
        m.sort_indices()
        parts = self._partition(train.n_users)
        rng = np.random.default_rng(int(self.seed))
        V = (rng.standard_normal((train.n_items, int(self.n_factors))) * INIT_STD).astype(np.float32)
        b = np.zeros((train.n_items, 1), dtype=np.float32)
        if self.engine == "flower":
            require_flower()
            params, users, shapes, history = self._run_flower(m, parts, [V, b])
        else:
            params, users, shapes, history = self._run_inprocess(m, parts, [V, b])
        V, b = params
        if not (np.isfinite(V).all() and np.isfinite(users).all()):
            raise ConfigError("FedMF diverged (non-finite factors); lower local_lr or server_lr")
        self.user_factors_ = users.astype(np.float32)
        self.item_factors_ = np.asarray(V, dtype=np.float32)
        self.item_bias_ = np.asarray(b, dtype=np.float32)[:, 0].copy()
        self.received_shapes_ = np.array(sorted(shapes), dtype=np.int64).reshape(-1, 2)
        self.round_history_ = np.asarray(history, dtype=np.int64)

    def _run_inprocess(
        self, m: sp.csr_matrix, parts: list[np.ndarray], params: list[np.ndarray]
    ) -> tuple[list[np.ndarray], np.ndarray, set[tuple[int, ...]], list[int]]:
        clients = [FedMFClient(c, users, m, self) for c, users in enumerate(parts)]
        shapes: set[tuple[int, ...]] = set()
        history = []
        for rnd in progress(range(int(self.rounds)), total=int(self.rounds), desc="FedMF"):
            # streamed FedAvg: the same weighted mean as fedavg() without holding every client's copy
            acc = [np.zeros_like(p, dtype=np.float64) for p in params]
            total = 0
            for c in self._sampled(len(clients), rnd):
                sent, n, _ = clients[c].fit([p.copy() for p in params], {"round": rnd})
                shapes.update(tuple(int(x) for x in np.shape(a)) for a in sent)  # what the server receives
                if n > 0:
                    for a, s in zip(acc, sent, strict=True):
                        a += n * s.astype(np.float64)
                    total += n
            history.append(total)
            if total:
                avg = [a / total for a in acc]
                params = self._server_step(params, [(avg, total)])
        users = np.zeros((m.shape[0], int(self.n_factors)), dtype=np.float32)
        for client in clients:
            users[client.users] = client.user_factors
        return params, users, shapes, history

    def _run_flower(
        self, m: sp.csr_matrix, parts: list[np.ndarray], params: list[np.ndarray]
    ) -> tuple[list[np.ndarray], np.ndarray, set[tuple[int, ...]], list[int]]:
        import logging

        with warnings.catch_warnings():  # flwr imports typer, which trips click's deprecation warnings
            warnings.simplefilter("ignore", DeprecationWarning)
            from flwr.client import ClientApp, NumPyClient
            from flwr.common import ArrayRecord, Context, FitIns, ndarrays_to_parameters, parameters_to_ndarrays
            from flwr.server import ServerApp, ServerAppComponents, ServerConfig
            from flwr.server.strategy import FedAvg
            from flwr.simulation import run_simulation

        model = self
        n_clients = len(parts)
        shapes: set[tuple[int, ...]] = set()
        history: list[int] = []
        final: dict[str, list[np.ndarray]] = {"params": params}
        device_root = Path(tempfile.mkdtemp(prefix="fusionrec-fedmf-"))
        rounds = int(self.rounds)

        class Client(NumPyClient):
            def __init__(self, cid: int, context: Context) -> None:
                self.inner = FedMFClient(cid, parts[cid], m, model)
                self.ctx = context
                if "fedmf" in context.state:
                    self.inner.set_state(context.state["fedmf"].to_numpy_ndarrays())  # type: ignore[union-attr]

            def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> Any:
                if str(self.inner.cid) not in str(config["sampled"]).split():
                    return parameters, 0, {}
                out = self.inner.fit(parameters, config)
                self.ctx.state["fedmf"] = ArrayRecord(numpy_ndarrays=self.inner.state())
                # the client's own storage (its device), read back by the simulation after the last round
                np.save(device_root / f"client{self.inner.cid}.npy", self.inner.user_factors)
                return out

        def client_fn(context: Context) -> Any:
            return Client(int(context.node_config["partition-id"]), context).to_client()

        class Strategy(FedAvg):
            def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
                # Flower's node ids do not name the partitions, so every node gets the round's sample (the same
                # seeded draw as the in-process engine) and a client outside it answers n_k = 0 at once
                rnd = server_round - 1
                chosen = " ".join(str(c) for c in model._sampled(n_clients, rnd))
                client_manager.wait_for(n_clients)
                fit_ins = FitIns(parameters, {"round": rnd, "sampled": chosen})
                return [(proxy, fit_ins) for proxy in client_manager.all().values()]

            def aggregate_fit(self, server_round: int, results: Any, failures: Any) -> Any:
                if failures:
                    raise ConfigError(f"FedMF (flower): {len(failures)} client(s) failed in round {server_round}")
                received = []
                for _, res in results:
                    arrays = parameters_to_ndarrays(res.parameters)
                    shapes.update(tuple(int(x) for x in a.shape) for a in arrays)
                    received.append((arrays, int(res.num_examples)))
                history.append(sum(n for _, n in received))
                final["params"] = model._server_step(final["params"], received)
                return ndarrays_to_parameters(final["params"]), {}

        def server_fn(context: Context) -> ServerAppComponents:
            strategy = Strategy(
                fraction_fit=1.0,
                fraction_evaluate=0.0,
                min_fit_clients=1,
                min_available_clients=n_clients,
                initial_parameters=ndarrays_to_parameters(params),
            )
            return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=rounds))

        flwr_logger = logging.getLogger("flwr")
        level = flwr_logger.level
        flwr_logger.setLevel(logging.WARNING)
        try:
            run_simulation(
                server_app=ServerApp(server_fn=server_fn),
                client_app=ClientApp(client_fn=client_fn),
                num_supernodes=n_clients,
                backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
            )
        finally:
            flwr_logger.setLevel(level)
        if len(history) != rounds:
            raise ConfigError(f"FedMF (flower): the simulation ran {len(history)} of {rounds} rounds; see its log")
        users = np.zeros((m.shape[0], int(self.n_factors)), dtype=np.float32)
        for cid, part in enumerate(parts):
            path = device_root / f"client{cid}.npy"
            if path.exists():
                users[part] = np.load(path)
            else:  # a client never sampled keeps its initial vectors
                users[part] = FedMFClient(cid, part, m, self).user_factors
            path.unlink(missing_ok=True)
        device_root.rmdir()
        return final["params"], users, shapes, history
