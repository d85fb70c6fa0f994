"""Server processes for the multi-worker fault tests: a model whose fit takes a set time (so that a retrain can be
killed while it runs) and a child entry point, ``python -m tests.serving._workers BUNDLE PORT STORE SETTINGS_JSON``,
that serves a bundle of it with uvicorn on 127.0.0.1 (run from the repository root)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from fusionrec.data.interactions import Interactions
from fusionrec.models.base import SideInfo
from tests.serving._models import TinyMF

SLOW_NAME = "SlowTinyMF"
SLOW_PATH = "tests.serving._workers:SlowTinyMF"


class SlowTinyMF(TinyMF):
    """:class:`TinyMF` whose fit first waits ``fit_seconds`` (a retrain that lasts long enough to be killed)."""

    def __init__(self, n_factors: int = 8, regularization: float = 0.1, fit_seconds: float = 0.0) -> None:
        super().__init__(n_factors=n_factors, regularization=regularization)
        self.fit_seconds = fit_seconds

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        time.sleep(self.fit_seconds)
        super()._fit(train, side)


def register() -> None:
    from fusionrec.models import registry

    registry.MODELS[SLOW_NAME] = SLOW_PATH


def main(argv: list[str]) -> None:
    import uvicorn

    from fusionrec.serving import ServingSettings, create_app

    register()
    bundle, port, store, extra = argv[0], int(argv[1]), argv[2], json.loads(argv[3])
    settings = ServingSettings(bundle_path=Path(bundle), store_url=store, **extra)
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main(sys.argv[1:])
