"""The HTTP layer of the service, apart from the routes: metrics, the body-size edge, error answers.

:class:`Metrics` (``prometheus_client``), :class:`BodyLimit` (pure ASGI middleware: 413 for bodies over the limit,
chunked ones too; request metrics), :func:`install_error_handlers` (every error answer in one shape, declared in
the OpenAPI schema through :func:`answers`), and :func:`safe` (error answers echo what clients sent: made valid
JSON).  FastAPI and Starlette are imported only inside the functions that need them.
"""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["ANSWERS", "BodyLimit", "Metrics", "answers", "install_error_handlers", "limit_compute_threads", "safe"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: descriptions of the error answers declared in the OpenAPI schema
ANSWERS = {
    400: "the request cannot be carried out (the detail says why)",
    401: "missing or wrong X-API-Key header",
    404: "unknown user or item (the hint says how to add one)",
    413: "request body too large, or too many events in one request",
}


class Metrics:
    """Request counters and latency histograms by route (``prometheus_client``, one registry per app), plus gauges
    read from the engine at each scrape."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "fusionrec_http_requests",
            "HTTP requests by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fusionrec_http_request_duration_seconds",
            "Request latency.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def add_gauges(self, read: Any) -> None:
        """Gauges from ``read()`` -> ``{name: (help, value)}``, evaluated at each scrape."""
        from prometheus_client.core import GaugeMetricFamily

        class _Gauges:
            def collect(self) -> Any:
                for name, (help_, value) in read().items():
                    yield GaugeMetricFamily(name, help_, value=value)

            def describe(self) -> list[Any]:
                return []

        self.registry.register(_Gauges())

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return bytes(generate_latest(self.registry))


class BodyLimit:
    """Pure ASGI middleware: refuses bodies over ``max_body`` with 413 and records metrics."""

    def __init__(self, app: Any, max_body: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body = max_body
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await self._too_large(send)
            self.metrics.observe(scope["method"], "(body too large)", 413, time.perf_counter() - start)
            return
        if scope["method"] in ("POST", "PUT", "PATCH"):
            # read the whole body here (at most max_body bytes): a chunked upload over the limit gets 413 too
            chunks: list[bytes] = []
            size = 0
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":  # the client went away
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    await self._too_large(send)
                    self.metrics.observe(scope["method"], "(body too large)", 413, time.perf_counter() - start)
                    return
                chunks.append(chunk)
                more = bool(message.get("more_body", False))
            body = b"".join(chunks)
            sent = {"done": False}

            async def replay() -> dict[str, Any]:
                if not sent["done"]:
                    sent["done"] = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return dict(await receive())

            receive = replay

        async def capture_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        await self.app(scope, receive, capture_send)
        route = scope.get("route")
        name = getattr(route, "path", None) or "(unmatched)"
        self.metrics.observe(scope["method"], name, status["code"], time.perf_counter() - start)

    async def _too_large(self, send: Any) -> None:
        body = b'{"detail":"request body too large; send smaller batches"}'
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def limit_compute_threads(n: int) -> None:
    """Cap BLAS / OpenMP (numpy, faiss, torch) threads in this process (``ServingSettings.compute_threads``)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)
    if "faiss" in sys.modules:  # loaded by the ANN index; not imported just for this
        sys.modules["faiss"].omp_set_num_threads(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def answers(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error answers ``codes`` as FastAPI ``responses=`` (declared in the OpenAPI schema)."""
    from fusionrec.serving.schemas import Problem

    return {c: {"model": Problem, "description": ANSWERS[c]} for c in codes}


def safe(value: Any) -> Any:
    """``value`` with every text made valid Unicode and every non-finite float ``None`` (JSON cannot carry
    either); error answers echo what clients sent."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {safe(str(k)): safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [safe(v) for v in value]
    return value


def install_error_handlers(app: Any) -> None:
    """Map the library's errors to HTTP answers: unknown user / item 404 (with a hint), :class:`ConfigError` and
    request validation 422 (FastAPI's shape), any other :class:`FusionRecError` 400, and a 405 whose ``Allow``
    lists every method of the path."""
    from fastapi import Request
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from fusionrec.errors import ConfigError, FusionRecError
    from fusionrec.serving.catalogue import UnknownItemError, UnknownUserError
    from fusionrec.serving.store import StoreFullError, StoreUnavailableError

    @app.exception_handler(UnknownUserError)
    async def _unknown_user(request: Request, exc: UnknownUserError) -> JSONResponse:
        return JSONResponse(
            status_code=404,
            content={
                "detail": safe(str(exc)),
                "hint": "POST /events or POST /users creates a user; GET /users lists some",
            },
        )

    @app.exception_handler(UnknownItemError)
    async def _unknown_item(request: Request, exc: UnknownItemError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": safe(str(exc)), "hint": "POST /items adds an item"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # the offending input is left out: it may be NaN or hold a lone surrogate, which JSON cannot carry back
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")} for e in exc.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": safe(errors)})

    @app.exception_handler(ConfigError)
    async def _bad_request(request: Request, exc: ConfigError) -> JSONResponse:
        # the shape of every 422 (FastAPI's validation errors), so that the schema holds for all of them
        return JSONResponse(
            status_code=422, content={"detail": [{"loc": ["request"], "msg": safe(str(exc)), "type": "value_error"}]}
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:  # Allow lists every method of the path, not only those of the first route
            path = _route_path(request)
            methods = sorted(
                {
                    m
                    for r in request.app.routes
                    if getattr(r, "path", None) == path
                    for m in getattr(r, "methods", None) or ()
                }
            )
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(methods)}
        return await http_exception_handler(request, exc)

    @app.exception_handler(StoreUnavailableError)
    async def _store_unavailable(request: Request, exc: StoreUnavailableError) -> JSONResponse:
        # nothing was stored, so nothing was acknowledged: 507 (disk full) or 503, with when to retry
        status = 507 if isinstance(exc, StoreFullError) else 503
        return JSONResponse(status_code=status, content={"detail": safe(str(exc))}, headers={"Retry-After": "5"})

    @app.exception_handler(FusionRecError)
    async def _fusionrec_error(request: Request, exc: FusionRecError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": safe(str(exc))})


def _route_path(request: Any) -> str | None:
    """The path template of the route ``request`` matched (by path), or ``None``."""
    from starlette.routing import Match

    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE and getattr(route, "path", None):
            return str(route.path)
    return None
