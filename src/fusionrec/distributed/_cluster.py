"""Connecting to Ray: the one place that calls ``ray.init``.

Ray is an optional extra (``pip install 'fusionrec[distributed]'``); it is imported only inside the functions
of :mod:`fusionrec.distributed`, never when ``fusionrec`` is imported.
"""

from __future__ import annotations

import os
from typing import Any

from fusionrec.errors import ConfigError

__all__ = ["LOCAL_ADDRESSES", "connect", "import_ray", "init_ray", "shutdown_ray"]

#: Addresses that start a new local cluster (head plus worker processes on this machine).
LOCAL_ADDRESSES = frozenset({"local"})

_INSTALL_HINT = "Ray is needed for distributed work: pip install 'fusionrec[distributed]' (ray[data]>=2.40)"

# Quiet, offline defaults for clusters we start ourselves (no dashboard, no usage-stats upload, no log dedup
# noise).  Only set when the user has not set them.
_QUIET_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DEDUP_LOGS": "0",
    "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
}


def import_ray() -> Any:
    """Import and return the ``ray`` module, or raise :class:`ConfigError` with the install hint."""
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - exercised only without ray
        raise ConfigError(_INSTALL_HINT) from exc
    return ray


def init_ray(address: str | None = "local", *, num_cpus: int | None = None) -> str:
    """Make sure this process is connected to a Ray cluster and return the cluster's address.

    Parameters
    ----------
    address:
        Where the cluster is.

        * ``"local"`` (or ``None``): start a new local cluster in this process's session (a head and
          ``num_cpus`` worker slots, processes on this machine), without the dashboard.
        * ``"auto"``: connect to the cluster started on this machine by ``ray start --head`` (or named by the
          ``RAY_ADDRESS`` environment variable); start a local one if there is none.
        * ``"HOST:PORT"`` (a ``ray start --head`` address) or ``"ray://HOST:10001"`` (Ray Client): connect to
          that cluster.
    num_cpus:
        CPU slots of a cluster started here (default: every core).  Only valid when a cluster is started;
        an existing cluster keeps the resources it was started with.

    Returns
    -------
    str
        The address of the cluster (``ray.get_runtime_context().gcs_address``), the same for every call.

    Notes
    -----
    Idempotent: when Ray is already initialised in this process the existing connection is reused and
    ``address``/``num_cpus`` are ignored (call :func:`shutdown_ray` first to switch clusters).  This is how
    :mod:`fusionrec.tuning` and the batch jobs share one connection.

    Raises
    ------
    ConfigError
        Ray is not installed, ``num_cpus`` is not a positive integer, or the cluster cannot be reached.
    """
    ray = import_ray()
    if num_cpus is not None and (isinstance(num_cpus, bool) or not isinstance(num_cpus, int) or num_cpus < 1):
        raise ConfigError(f"num_cpus must be a positive integer or None, got {num_cpus!r}")
    if ray.is_initialized():
        return str(ray.get_runtime_context().gcs_address)
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    spec = "local" if address is None else str(address).strip()
    if not spec:
        raise ConfigError("Ray address is empty: pass 'local', 'auto', 'HOST:PORT' or 'ray://HOST:PORT'")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True, "logging_level": "warning"}
    if spec in LOCAL_ADDRESSES:
        kwargs["address"] = "local"
        kwargs["num_cpus"] = num_cpus
    elif spec == "auto":
        kwargs["address"] = None  # Ray: RAY_ADDRESS, then the latest `ray start` cluster, else a new local one
        kwargs["num_cpus"] = num_cpus
    else:
        kwargs["address"] = spec
        kwargs.pop("include_dashboard")
        if num_cpus is not None:
            raise ConfigError(
                f"num_cpus={num_cpus} only applies to a cluster started here; "
                f"the cluster at {spec!r} keeps the resources it was started with (drop num_cpus)"
            )
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(
            f"cannot connect to the Ray cluster at {spec!r} ({exc}); start one with `ray start --head` "
            "or pass address='local'"
        ) from exc
    return str(ray.get_runtime_context().gcs_address)


def connect(address: str | None = "local") -> str:
    """Connect to the Ray cluster at ``address`` (see :func:`init_ray`) and return its address."""
    return init_ray(address)


def shutdown_ray() -> None:
    """Disconnect this process from Ray (and stop a local cluster it started); no-op when not connected."""
    try:
        import ray
    except ImportError:  # pragma: no cover
        return
    if ray.is_initialized():
        ray.shutdown()
