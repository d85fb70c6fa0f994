"""Distributed work over Ray (optional extra ``fusionrec[distributed]``).

* :func:`init_ray` / :func:`connect`: connect this process to a Ray cluster (or start a local one).

Ray itself is imported only inside these functions, so importing this package is cheap and works without Ray.
"""

from __future__ import annotations

from fusionrec.distributed._cluster import connect, init_ray, shutdown_ray

__all__ = ["connect", "init_ray", "shutdown_ray"]
