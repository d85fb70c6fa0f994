from __future__ import annotations

import subprocess
import sys

import pytest

from fusionrec.errors import ConfigError


def test_importing_the_package_does_not_import_ray() -> None:
    code = "import sys, fusionrec.distributed, fusionrec.cli.batch; print(sys.modules.get('ray') is not None)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_init_ray_rejects_bad_num_cpus(bad: object) -> None:
    pytest.importorskip("ray")
    from fusionrec.distributed import init_ray

    with pytest.raises(ConfigError, match="num_cpus"):
        init_ray("local", num_cpus=bad)  # type: ignore[arg-type]


def test_init_ray_is_idempotent(ray_cluster: str) -> None:
    import ray

    from fusionrec.distributed import connect, init_ray

    assert ray.is_initialized()
    assert init_ray("auto") == ray_cluster == connect("local")
    assert ray.cluster_resources()["CPU"] == 2
