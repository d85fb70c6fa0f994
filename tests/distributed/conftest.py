"""One local Ray cluster for the whole directory (head and two worker slots, processes on this machine).

Skipped with a reason when Ray is not installed.  The dashboard and usage statistics are off.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'fusionrec[distributed]'")
    for key, value in {
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_DEDUP_LOGS": "0",
        "RAY_AUTH_MODE": "disabled",
        "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
    }.items():
        os.environ.setdefault(key, value)
    from fusionrec.distributed import init_ray, shutdown_ray

    address = init_ray("local", num_cpus=2)
    yield address
    shutdown_ray()
