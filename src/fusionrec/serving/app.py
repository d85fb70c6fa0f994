"""The HTTP API: ``create_app(settings)`` builds a FastAPI app (nothing happens at import) from route modules.

Reads: ``GET /recommend``, ``/similar/{item}``, ``/explain`` (:mod:`~fusionrec.serving.routes.recommend`),
``/users``, ``/users/{user}/history`` (:mod:`~fusionrec.serving.routes.users`), ``/health``, ``/metrics``
(``prometheus_client``; :mod:`~fusionrec.serving.routes.ops`), ``/`` (the web page), ``/docs`` (Swagger UI served
from the ``swagger-ui-bundle`` package: works offline; :mod:`~fusionrec.serving.routes.web`).  Writes
(``X-API-Key`` when configured): ``POST /events``, ``/items`` (JSON with raw content per modality),
``/items/{item}/image`` (multipart upload, with a content root; :mod:`~fusionrec.serving.routes.items`), ``/users``
(profile, and ``friends``: links to known users that social models place a new user through), ``/admin/retrain``.
Every event is committed to the store before the 2xx answer.

Hardening: bodies are validated by :mod:`fusionrec.serving.schemas` and the bundle's domain (no accepted write can
break a later read or retrain); each rule (``k`` bounds, link weights, self-links, repeats, id forms) is applied once
at the edge (:mod:`fusionrec.serving.rules`, :mod:`fusionrec.serving.routes.deps`) and trusted inside; bodies over
``max_body_bytes`` get 413, chunked ones too; every error answer is declared in the OpenAPI schema, which is
narrowed to the served bundle (:mod:`fusionrec.serving.openapi`); posters are served only from under the content
root; with ``read_requires_key`` (``fusionrec serve --private``) every read needs the key, and with
``user_reads_require_key`` (``fusionrec serve --api-key``) the reads that reveal a user's history or profile do.

Forgetting a user: ``DELETE /users/{user}`` (the key) deletes the user's events, profile and posted links (both
ways) from the store, its row from the served model, its social links and profile features, and the next retrain no
longer sees it; 204 when done, 404 when the user is unknown (never known, or already forgotten: deleting twice is
safe).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fusionrec.serving.http import Metrics, limit_compute_threads
from fusionrec.serving.settings import ServingSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from fusionrec.serving.engine import ServingEngine

__all__ = ["Metrics", "create_app", "limit_compute_threads"]


def create_app(settings: ServingSettings, engine: ServingEngine | None = None) -> FastAPI:
    """Build the FastAPI application serving ``settings.bundle_path``.

    Parameters
    ----------
    settings
        See :class:`ServingSettings`.
    engine
        An existing :class:`~fusionrec.serving.engine.ServingEngine` (tests); by default one is built from the
        bundle and the store named in ``settings``.
    """
    try:
        from contextlib import asynccontextmanager

        from fastapi import FastAPI
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('serving needs the serve extra: pip install "fusionrec[serve]"') from exc

    from fusionrec.serving.engine import ServingEngine
    from fusionrec.serving.http import BodyLimit, install_error_handlers
    from fusionrec.serving.openapi import bundle_schema
    from fusionrec.serving.routes import items, ops, recommend, users, web
    from fusionrec.serving.store import StoreUnavailableError, open_store

    if engine is None:
        engine = ServingEngine(
            settings.bundle_path,
            open_store(settings.resolved_store_url),
            index=settings.index,
            ann_threshold=settings.ann_threshold,
            retrain_params=settings.retrain_params,
        )
    eng = engine
    metrics = Metrics()

    def stored_events() -> float:
        try:
            return float(eng.store.count())
        except StoreUnavailableError:  # the store is down: /metrics keeps answering (NaN), like the other reads
            return float("nan")

    metrics.add_gauges(
        lambda: {
            "fusionrec_events_stored": ("Events in the store (NaN while it is unavailable).", stored_events()),
            "fusionrec_users": ("Users known (bundle + online).", float(eng.state.catalogue.n_known_users)),
            "fusionrec_items": ("Items known (bundle + online).", float(eng.state.n_items)),
            "fusionrec_retrains_total": ("Retrains run.", float(eng.retrain_status["runs"])),
        }
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        limit_compute_threads(settings.compute_threads)
        eng.start_background(settings.retrain_interval_s, settings.sync_interval_s)
        yield
        eng.close()

    app = FastAPI(
        title="fusionrec",
        version=_version(),
        description="Recommendations, similar items, explanations; events and new items folded in online.",
        lifespan=lifespan,
        docs_url=None,  # served by routes.web from the Swagger UI assets shipped in a package (offline, no CDN)
        redoc_url=None,
        # no 307 to the path without its trailing slash: an API client re-sending a DELETE or POST elsewhere is a
        # surprise (``DELETE /users/`` redirected to ``/users``); such paths answer 404, or 422 for an empty id
        redirect_slashes=False,
    )
    app.state.engine = eng
    app.state.metrics = metrics
    app.state.settings = settings

    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["*"],
        )
    install_error_handlers(app)
    for router in (ops.router(), recommend.router(settings), users.router(), items.router(settings), web.router()):
        app.include_router(router)

    def openapi() -> dict[str, Any]:
        # the generic schema, narrowed to what this bundle accepts (value range, feature width, modalities, columns)
        from fastapi.openapi.utils import get_openapi

        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = bundle_schema(schema, eng.state)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(BodyLimit, max_body=settings.max_body_bytes, metrics=metrics)
    return app


def _version() -> str:
    from fusionrec import __version__

    return __version__
