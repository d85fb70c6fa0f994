"""ASGI entry for uvicorn workers: ``uvicorn --factory fusionrec.serving.asgi:app_from_env``."""

from __future__ import annotations

from typing import Any


def app_from_env() -> Any:
    """Build the app from ``FUSIONREC_SERVE_*`` environment variables (see :class:`ServingSettings`)."""
    from fusionrec.serving.app import create_app
    from fusionrec.serving.settings import ServingSettings

    return create_app(ServingSettings.from_env())
