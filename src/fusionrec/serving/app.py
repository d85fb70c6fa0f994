"""The HTTP API: ``create_app(settings)`` builds a FastAPI app (nothing happens at import).

Reads: ``GET /recommend``, ``/similar/{item}``, ``/explain``, ``/users``, ``/users/{user}/history``,
``/health``, ``/metrics`` (``prometheus_client``), ``/`` (the web page), ``/docs`` (Swagger UI served from the
``swagger-ui-bundle`` package: works offline).  Writes (``X-API-Key`` when configured): ``POST /events``,
``/items`` (JSON with raw content per modality), ``/items/{item}/image`` (multipart upload, with a content root),
``/users`` (profile, and ``friends``: links to known users that social models place a new user through),
``/admin/retrain``.  Every event is committed to the store before the 2xx answer.

Hardening: bodies are validated by :mod:`fusionrec.serving.schemas` and the bundle's domain (no accepted write can
break a later read or retrain); bodies over ``max_body_bytes`` get 413, chunked ones too; every error answer is
declared in the OpenAPI schema, which is narrowed to the served bundle; posters are served only from under the
content root; with ``read_requires_key`` (``fusionrec serve --private``) every read needs the key, and with
``user_reads_require_key`` (``fusionrec serve --api-key``) the reads that reveal a user's history or profile do.

Forgetting a user: ``DELETE /users/{user}`` (the key) deletes the user's events, profile and posted links (both
ways) from the store, its row from the served model, its social links and profile features, and the next retrain no longer sees it; 204
when done, 404 when the user is unknown (never known, or already forgotten: deleting twice is safe).
"""

import hmac
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fusionrec.serving.settings import ServingSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from fusionrec.serving.engine import OnlineModel, ServingEngine

__all__ = ["Metrics", "create_app"]

WEB_DIR = Path(__file__).resolve().parent / "web"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
RESERVED_QUERY = {"user", "k", "exclude_seen", "candidates", "diversify", "calibrate", "max_share"}
#: candidates (the model's top) a re-ranked recommendation chooses its k items from
RERANK_DEPTH = 100
#: modality kinds whose raw content is a file (must resolve under ``ServingSettings.content_root``)
FILE_KINDS = {"image", "audio", "video"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp")


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


class _Edge:
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


def create_app(settings: ServingSettings, engine: "ServingEngine | None" = None) -> "FastAPI":
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

        from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, Query, Request, UploadFile
        from fastapi import Path as PathParam
        from fastapi.exception_handlers import http_exception_handler
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
        from starlette.exceptions import HTTPException as StarletteHTTPException
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('serving needs the serve extra: pip install "fusionrec[serve]"') from exc

    from fusionrec.errors import ConfigError, FusionRecError
    from fusionrec.serving import schemas as S
    from fusionrec.serving.catalogue import UnknownItemError, UnknownUserError
    from fusionrec.serving.engine import RetrainError, ServingEngine
    from fusionrec.serving.store import Event, open_store

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
    metrics.add_gauges(
        lambda: {
            "fusionrec_events_stored": ("Events in the store.", float(eng.store.count())),
            "fusionrec_users": ("Users known (bundle + online).", float(eng.state.catalogue.n_known_users)),
            "fusionrec_items": ("Items known (bundle + online).", float(eng.state.n_items)),
            "fusionrec_retrains_total": ("Retrains run.", float(eng.retrain_status["runs"])),
        }
    )

    @asynccontextmanager
    async def lifespan(app: "FastAPI") -> Any:
        limit_compute_threads(settings.compute_threads)
        eng.start_background(settings.retrain_interval_s, settings.sync_interval_s)
        yield
        eng.close()

    app = FastAPI(
        title="fusionrec",
        version=_version(),
        description="Recommendations, similar items, explanations; events and new items folded in online.",
        lifespan=lifespan,
        docs_url=None,  # served below from the Swagger UI assets shipped in a package (works offline, no CDN)
        redoc_url=None,
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

    def _check_key(key: str | None) -> None:
        if settings.api_key is None:
            return
        if key is None or not hmac.compare_digest(key.encode(), settings.api_key.encode()):
            raise HTTPException(status_code=401, detail="missing or wrong X-API-Key header")

    def write_auth(x_api_key: str | None = Header(None, alias="X-API-Key")) -> None:
        _check_key(x_api_key)

    def read_auth(x_api_key: str | None = Header(None, alias="X-API-Key")) -> None:
        if settings.read_requires_key:
            _check_key(x_api_key)

    def user_auth(x_api_key: str | None = Header(None, alias="X-API-Key")) -> None:
        """Reads revealing a user's history or profile (recommendations, explanations, users, histories)."""
        if settings.read_requires_key or settings.user_reads_require_key:
            _check_key(x_api_key)

    @app.exception_handler(UnknownUserError)
    async def _unknown_user(request: Request, exc: UnknownUserError) -> JSONResponse:
        return JSONResponse(
            status_code=404,
            content={
                "detail": _safe(str(exc)),
                "hint": "POST /events or POST /users creates a user; GET /users lists some",
            },
        )

    @app.exception_handler(UnknownItemError)
    async def _unknown_item(request: Request, exc: UnknownItemError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": _safe(str(exc)), "hint": "POST /items adds an item"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # the offending input is left out: it may be NaN or hold a lone surrogate, which JSON cannot carry back
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")} for e in exc.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": _safe(errors)})

    @app.exception_handler(ConfigError)
    async def _bad_request(request: Request, exc: ConfigError) -> JSONResponse:
        # the shape of every 422 (FastAPI's validation errors), so that the schema holds for all of them
        return JSONResponse(
            status_code=422, content={"detail": [{"loc": ["request"], "msg": _safe(str(exc)), "type": "value_error"}]}
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:  # Allow lists every method of the path, not only those of the first route
            methods = sorted(
                {
                    m
                    for r in app.routes
                    if getattr(r, "path", None) == _route_path(request)
                    for m in getattr(r, "methods", None) or ()
                }
            )
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(methods)}
        return await http_exception_handler(request, exc)

    @app.exception_handler(FusionRecError)
    async def _fusionrec_error(request: Request, exc: FusionRecError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": _safe(str(exc))})

    def _items_out(state: "OnlineModel", idx: Any, scores: Any = None) -> list[S.ItemOut]:
        titles = state.item_meta.get("title")
        posters = state.item_meta.get("poster")
        out = []
        for j, i in enumerate(list(idx)):
            i = int(i)
            poster = posters[i] if posters else None
            out.append(
                S.ItemOut(
                    item=state.item_raw[i],
                    score=None if scores is None else float(scores[j]),
                    title=(titles[i] or None) if titles else None,
                    poster=(_poster_url(state.item_raw[i], poster) if poster else None),
                )
            )
        return out

    def _answers(*codes: int) -> dict[int | str, dict[str, Any]]:
        return {c: {"model": S.Problem, "description": ANSWERS[c]} for c in codes}

    READ = _answers(400, 401, 404)
    WRITE = _answers(400, 401, 404, 413)
    UserQ = Query(..., min_length=1, max_length=S.MAX_ID_LENGTH, description="raw user id")
    ItemQ = Query(..., min_length=1, max_length=S.MAX_ID_LENGTH, description="raw item id")
    K = Query(settings.default_k, ge=1, le=settings.max_k, description=f"list length, 1..{settings.max_k}")

    @app.get("/health", tags=["ops"], responses=_answers(400))
    def health() -> dict[str, Any]:
        st = eng.state
        return {
            "status": "ok",
            "model": st.bundle.model_name,
            "fingerprint": st.bundle.fingerprint,
            "users": st.catalogue.n_known_users,
            "items": st.n_items,
            "events_applied": st.applied_seq,
            "index": st.index_kind,
            "content": {
                "modalities": {} if st.side is None else dict(st.side.item_kinds),
                "placement": "content" if st.can_add_content else ("neighbours" if st.is_factor else "proxy"),
            },
            "retrain": eng.retrain_status,
        }

    @app.get(
        "/metrics",
        tags=["ops"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}},
    )
    def prometheus() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/recommend",
        tags=["recommend"],
        response_model=S.RecommendOut,
        dependencies=[Depends(user_auth)],
        responses=READ,
    )
    def recommend(
        request: Request,
        user: str = UserQ,
        k: int = K,
        exclude_seen: bool = Query(True, description="leave out items the user already interacted with"),
        candidates: str | None = Query(None, description="comma-separated raw item ids to rank among"),
        diversify: float | None = Query(None, ge=0, le=1, description="re-rank for diversity (MMR trade-off)"),
        calibrate: float | None = Query(
            None, ge=0, le=1, description="re-rank so the list's genre mix matches the user's history (trade-off)"
        ),
        max_share: float | None = Query(None, ge=0, le=1, description="at most this share of a list per genre"),
    ) -> S.RecommendOut:
        """Top-k items for a user; other query parameters filter by item attribute (``?genres=Comedy``).
        ``diversify`` / ``calibrate`` / ``max_share`` re-rank the model's top 100 (:mod:`fusionrec.rerank`) with the
        catalogue's labels (``genres``) as groups."""
        filters = {k_: v for k_, v in request.query_params.items() if k_ not in RESERVED_QUERY}
        cand = None if candidates is None else [c for c in candidates.split(",") if c]
        st = eng.state
        spec = {
            key: v
            for key, v in (("diversify", diversify), ("calibrate", calibrate), ("max_share", max_share))
            if v is not None
        }
        depth = max(k, RERANK_DEPTH) if spec else k
        idx, scores = st.recommend(user, depth, exclude_seen=exclude_seen, candidates=cand, filters=filters)
        if spec:
            idx, scores = st.rerank(user, idx, scores, k, spec)
        return S.RecommendOut(
            user=st.user_raw[st.require_user(user)],
            k=k,
            items=_items_out(st, idx, scores),
            index=st.index_kind,
        )

    @app.get(
        "/similar/{item}",
        tags=["recommend"],
        response_model=S.SimilarOut,
        dependencies=[Depends(read_auth)],
        responses=READ,
    )
    def similar(
        item: str = PathParam(..., max_length=S.MAX_ID_LENGTH, description="raw item id"), k: int = K
    ) -> S.SimilarOut:
        """Items most similar to ``item`` (cosine of item factors, else co-occurrence)."""
        st = eng.state
        idx, scores = st.similar(item, k)
        return S.SimilarOut(item=st.item_raw[int(st.require_items([item])[0])], items=_items_out(st, idx, scores))

    from fusionrec.serving.explain import response_model as explain_model

    ExplainWords = explain_model()

    @app.get(
        "/explain", tags=["recommend"], response_model=ExplainWords, dependencies=[Depends(user_auth)], responses=READ
    )
    def explain(user: str = UserQ, item: str = ItemQ, n: int = Query(5, ge=1, le=50)) -> S.ExplainOut:
        """Why ``item`` for ``user`` in words (``sentence``): the history items behind it, the content it shares
        with them per modality, and for fusion models each modality's share of the score (fusionrec.explain)."""
        st = eng.state
        out = st.explain(user, item, n)
        return ExplainWords(  # type: ignore[no-any-return]
            user=st.user_raw[st.require_user(user)], item=st.item_raw[int(st.require_items([item])[0])], **out
        )

    @app.get("/users", tags=["users"], dependencies=[Depends(user_auth)], responses=READ)
    def list_users(limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0)) -> dict[str, Any]:
        """Some user ids (for the web page)."""
        st = eng.state
        with st.lock:
            return {"total": st.catalogue.n_known_users, "users": st.catalogue.known_users(offset, limit)}

    @app.get("/users/{user}", tags=["users"], dependencies=[Depends(user_auth)], responses=READ)
    def get_user(user: str = PathParam(..., max_length=S.MAX_ID_LENGTH)) -> dict[str, Any]:
        """A user's profile attributes, its posted friends, and how many items it has (``/users/{user}/history``
        lists them)."""
        st = eng.state
        with st.lock:
            u = st.require_user(user)
            return {
                "user": st.user_raw[u],
                "attributes": dict(st.user_attrs.get(u, {})),
                "n_items": len(st.history_arrays(u)[0]),
                "personalised": st.has_vector(u),
                "friends": [{"user": st.user_raw[f], "weight": w} for f, w in st.links.get(u, {}).items()],
            }

    @app.delete(
        "/users/{user}",
        tags=["users"],
        status_code=204,
        response_class=Response,
        dependencies=[Depends(write_auth)],
        responses=_answers(401, 404),
    )
    def delete_user(user: str = PathParam(..., min_length=1, max_length=S.MAX_ID_LENGTH)) -> Response:
        """Forget a user: its events and profile leave the store, its row the served model, its links the social
        graph; the next retrain no longer sees it.  204: forgotten; 404: unknown (or already forgotten)."""
        try:
            eng.delete_user(user)
        except UnknownUserError:
            raise HTTPException(
                status_code=404, detail="unknown user: nothing to forget (never known here, or already forgotten)"
            ) from None
        return Response(status_code=204)

    @app.get(
        "/users/{user}/history",
        tags=["users"],
        response_model=S.HistoryOut,
        dependencies=[Depends(user_auth)],
        responses=READ,
    )
    def history(
        user: str = PathParam(..., max_length=S.MAX_ID_LENGTH), limit: int = Query(50, ge=1, le=10_000)
    ) -> S.HistoryOut:
        """The user's items (training data and online events), highest value first."""
        st = eng.state
        with st.lock:
            u = st.require_user(user)
            items, values = st.history_arrays(u)
            attrs = st.user_attrs.get(u, {})
        order = sorted(range(len(items)), key=lambda j: -values[j])[:limit]
        return S.HistoryOut(user=st.user_raw[u], items=_items_out(st, items[order], values[order]), attributes=attrs)

    @app.post(
        "/events", tags=["write"], response_model=S.EventsOut, dependencies=[Depends(write_auth)], responses=WRITE
    )
    def post_events(body: S.EventsIn) -> S.EventsOut:
        """Store a batch of events (one transaction, durable before the answer) and fold them in at once."""
        if len(body.events) > settings.max_events_per_request:
            raise HTTPException(
                status_code=413, detail=f"at most {settings.max_events_per_request} events per request; split the batch"
            )
        now = int(time.time())
        events = [Event(str(e.user), str(e.item), e.value, e.timestamp or now) for e in body.events]
        seqs = eng.post_events(events)
        return S.EventsOut(stored=len(seqs), seqs=seqs)

    def _file_kind(modality: str) -> str | None:
        side = eng.state.side
        kind = None if side is None else side.item_kinds.get(modality)
        return kind if kind in FILE_KINDS else None

    def _resolve(value: Any, modality: str) -> str:
        root = settings.content_root
        if root is None:
            raise HTTPException(
                status_code=400,
                detail=f"{modality!r} is file content; the server has no content root "
                "(set FUSIONREC_SERVE_CONTENT_ROOT) to read it from",
            )
        if not isinstance(value, str) or not value.strip():
            raise HTTPException(status_code=400, detail=f"{modality!r} needs a file path under the content root")
        return str(resolve_under(root, value, modality))

    def _add_item(item: Any, meta: dict[str, Any], content: dict[str, Any], features: Any, text: Any) -> S.Created:
        columns = eng.state.item_meta
        for name, value in content.items():  # content named like a display column fills it (filters, page)
            if name in columns and name not in meta and isinstance(value, str | list):
                meta[name] = value
        for name, value in list(content.items()):
            kind = _file_kind(name)
            if kind is not None and value is not None:
                content[name] = _resolve(value, name)
                if kind == "image" and "poster" not in meta:
                    meta["poster"] = content[name]
        idx = eng.post_item(item, meta, features, text, content)
        return S.Created(id=item, index=idx)

    @app.post(
        "/items",
        tags=["write"],
        response_model=S.Created,
        status_code=201,
        dependencies=[Depends(write_auth)],
        responses=WRITE,
    )
    def post_item(body: S.ItemIn) -> S.Created:
        """Add an item, recommendable at once: its raw ``content`` (per modality name: text, labels, an image path
        under the content root) is encoded with the bundle's encoders and places it next to similar items."""
        meta: dict[str, Any] = dict(body.meta)
        if body.title is not None:
            meta["title"] = body.title
        if body.poster is not None:  # an http(s) URL, given to clients as is (never fetched or redirected to)
            meta["poster"] = body.poster
        return _add_item(body.item, meta, dict(body.content), body.features, body.text)

    @app.post(
        "/items/{item}/image",
        tags=["write"],
        response_model=S.Created,
        status_code=201,
        dependencies=[Depends(write_auth)],
        responses=WRITE,
        include_in_schema=settings.content_root is not None,  # uploads need a content root
    )
    async def post_item_image(
        item: str = PathParam(..., min_length=1, max_length=S.MAX_ID_LENGTH),
        file: UploadFile = File(..., description="the item's image (jpg, png, gif, webp)"),  # noqa: B008
        modality: str | None = Form(None, description="image modality name (default: the bundle's first)"),
        title: str | None = Form(None),
    ) -> S.Created:
        """Add an item from an uploaded image (multipart), stored under the content root and placed by it."""
        import hashlib

        root = settings.content_root
        if root is None:
            raise HTTPException(status_code=400, detail="uploads need a content root (FUSIONREC_SERVE_CONTENT_ROOT)")
        side = eng.state.side
        images = [k for k, v in ({} if side is None else side.item_kinds).items() if v == "image"]
        name = modality or (images[0] if images else None)
        if name is None or name not in images:
            raise HTTPException(status_code=400, detail=f"no image modality {name!r} in the bundle; it has {images}")
        suffix = Path(file.filename or "").suffix.lower()
        if suffix not in IMAGE_SUFFIXES:
            raise HTTPException(status_code=400, detail=f"upload an image file ({', '.join(IMAGE_SUFFIXES)})")
        data = await file.read()
        if not data:
            raise HTTPException(status_code=400, detail="the uploaded file is empty")
        folder = Path(root) / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
        if not target.exists():
            tmp = target.with_suffix(target.suffix + ".part")
            tmp.write_bytes(data)
            tmp.replace(target)
        meta: dict[str, Any] = {} if title is None else {"title": title}
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(_add_item, item, meta, {name: str(target)}, None, None)

    @app.post(
        "/users",
        tags=["write"],
        response_model=S.UserCreated,
        status_code=201,
        dependencies=[Depends(write_auth)],
        responses=WRITE,
    )
    def post_user(body: S.UserIn) -> S.UserCreated:
        """Create a user or update its profile and links; profile-only users get popular, attribute-matching items.

        ``friends`` (links to known users, weight >= 0) replaces the user's links: a social model (``friends_used``)
        recommends a user with no history through its friends (their weighted mean taste), and with a history
        blends the two, again at each event.  Unknown friends: 404 naming them; self-links are dropped and a
        repeated friend keeps its largest weight."""
        friends = None if body.friends is None else [(f.user, f.weight) for f in body.friends]
        u = eng.post_user(body.user, body.attributes, friends)
        st = eng.state
        with st.lock:
            return S.UserCreated(
                id=body.user,
                index=u,
                friends=len(st.links.get(u, {})),
                friends_used=st.uses_friends,
                personalised=st.has_vector(u),
            )

    @app.post(
        "/admin/retrain",
        tags=["ops"],
        status_code=202,
        response_model=S.RetrainOut,
        dependencies=[Depends(write_auth)],
        responses={
            **_answers(401, 413),
            400: {"model": S.RetrainOut, "description": "the retrain could not start or failed; status has the reason"},
            409: {"model": S.RetrainOut, "description": "a retrain is already running"},
        },
    )
    def retrain(wait: bool = Query(False, description="block until the new bundle is live")) -> Any:
        """Refit on the bundle's data plus every stored event in the background, then swap it in.

        202: started (with ``wait``: finished and live); 409: one is already running; 400: it failed (its data
        fail validation, or, with ``wait``, the fit failed) and ``status.last_error`` says why."""
        try:
            started = eng.retrain(wait=wait)
        except RetrainError:
            return JSONResponse(status_code=400, content=_safe({"started": False, "status": dict(eng.retrain_status)}))
        if not started:
            return JSONResponse(status_code=409, content=_safe({"started": False, "status": dict(eng.retrain_status)}))
        return S.RetrainOut(started=True, status=dict(eng.retrain_status))

    @app.get("/admin/retrain", tags=["ops"], dependencies=[Depends(read_auth)], responses=READ)
    def retrain_status() -> dict[str, Any]:
        """The last retrain: state (idle, running, failed), last_error (the reason), runs, last_finished."""
        return dict(_safe(dict(eng.retrain_status)))

    @app.get("/posters/{item}", tags=["web"], include_in_schema=False)
    def poster(item: str) -> Any:
        """An item's poster image: only a regular image file under the content root (symlinks resolved, never
        out of it); URL posters are given to clients as they are and never redirected to."""
        st = eng.state
        posters = st.item_meta.get("poster")
        i = st.item_index(item)
        if not posters or i is None or not posters[i] or settings.content_root is None:
            raise HTTPException(status_code=404, detail="no poster file for this item")
        path = poster_file(settings.content_root, str(posters[i]))
        if path is None:
            raise HTTPException(status_code=404, detail="no poster file for this item under the content root")
        return FileResponse(path)

    swagger = _swagger_dir()

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    @app.get("/docs-assets/{name}", include_in_schema=False)
    def docs_asset(name: str) -> FileResponse:
        types = {
            "swagger-ui-bundle.js": "text/javascript",
            "swagger-ui.css": "text/css",
            "favicon-32x32.png": "image/png",
        }
        if swagger is None or name not in types:
            raise HTTPException(status_code=404, detail="not found (pip install swagger-ui-bundle for /docs)")
        return FileResponse(swagger / name, media_type=types[name])

    @app.get("/", include_in_schema=False)
    def index_page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    @app.get("/web/{name}", include_in_schema=False)
    def web_asset(name: str) -> FileResponse:
        allowed = {"app.js": "text/javascript", "style.css": "text/css"}
        if name not in allowed:
            raise HTTPException(status_code=404, detail="not found")
        return FileResponse(WEB_DIR / name, media_type=allowed[name])

    def openapi() -> dict[str, Any]:
        # the generic schema, narrowed to what this bundle accepts (value range, feature width, modalities, columns)
        from fastapi.openapi.utils import get_openapi

        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = bundle_schema(schema, eng.state)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(_Edge, max_body=settings.max_body_bytes, metrics=metrics)
    return app


def bundle_schema(schema: dict[str, Any], state: "OnlineModel") -> dict[str, Any]:
    """``schema`` (the OpenAPI document) with the request bodies narrowed to what the served bundle accepts: the
    event value range of the model, the width of its dense features, its item modalities and the kinds of its
    metadata columns (so that schema-valid requests are accepted)."""
    from fusionrec.serving import schemas as S
    from fusionrec.serving.bundle import DENSE_MODALITY

    comps = schema.get("components", {}).get("schemas", {})
    event = comps.get("EventIn", {}).get("properties", {}).get("value")
    if event is not None:
        lo, hi = state.value_domain()
        event.update(minimum=lo, maximum=hi)
    item = comps.get("ItemIn", {}).get("properties", {})
    side = state.side
    kinds = {} if side is None else dict(side.item_kinds)
    widths = {} if side is None else {k: int(v.shape[1]) for k, v in side.item_features.items()}
    numbers = {"type": "array", "items": {"type": "number", "minimum": -1e15, "maximum": 1e15}}
    if "features" in item:
        d = widths.get(DENSE_MODALITY)
        item["features"] = (
            {"anyOf": [{**numbers, "minItems": d, "maxItems": d}, {"type": "null"}]} if d else {"type": "null"}
        )
    if "content" in item:
        props: dict[str, Any] = {}
        for name, kind in kinds.items():
            if kind in ("text",) or kind in FILE_KINDS:
                props[name] = {"anyOf": [{"type": "string", "maxLength": 100_000}, {"type": "null"}]}
            elif kind == "categorical":
                labels = {"type": "array", "items": {"type": "string", "maxLength": 1000}, "maxItems": 1000}
                props[name] = {"anyOf": [{"type": "string", "maxLength": 1000}, labels, {"type": "null"}]}
            elif name in widths:
                d = widths[name]
                props[name] = {"anyOf": [{**numbers, "minItems": d, "maxItems": d}, {"type": "null"}]}
        item["content"] = {"type": "object", "properties": props, "additionalProperties": False}
    if "meta" in item:
        text = {"type": "string", "maxLength": S.MAX_SHORT_LENGTH}
        labels = {"type": "array", "items": text, "maxItems": 100}
        known = {key: (labels if col and isinstance(col[0], list) else text) for key, col in state.item_meta.items()}
        for key in ("title", "poster"):
            known.setdefault(key, text)
        item["meta"] = {**item["meta"], "properties": known}
    return schema


def resolve_under(root: Path, value: str, what: str = "path") -> Path:
    """``value`` (relative to ``root`` or absolute) resolved with symlinks; HTTP 400 when it leaves ``root`` or
    is not a file."""
    from fastapi import HTTPException

    base = Path(root).resolve()
    p = Path(value)
    resolved = (p if p.is_absolute() else base / p).resolve()
    if not resolved.is_relative_to(base):
        raise HTTPException(status_code=400, detail=f"{what!r}: {value!r} is outside the content root")
    if not resolved.is_file():
        raise HTTPException(status_code=400, detail=f"{what!r}: no file {value!r} under the content root")
    return resolved


#: descriptions of the error answers declared in the OpenAPI schema
ANSWERS = {
    400: "the request cannot be carried out (the detail says why)",
    401: "missing or wrong X-API-Key header",
    404: "unknown user or item (the hint says how to add one)",
    413: "request body too large, or too many events in one request",
}


def _safe(value: Any) -> Any:
    """``value`` with every text made valid Unicode and every non-finite float ``None`` (JSON cannot carry
    either); error answers echo what clients sent."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {_safe(str(k)): _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    return value


def poster_file(root: Path, ref: str) -> Path | None:
    """The image file ``ref`` names when it resolves (symlinks followed) to a regular file under ``root``."""
    if not ref or ref.startswith(("http://", "https://")):
        return None
    base = Path(root).resolve()
    p = Path(ref)
    try:
        resolved = (p if p.is_absolute() else base / p).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    if not resolved.is_relative_to(base) or not resolved.is_file() or resolved.suffix.lower() not in IMAGE_SUFFIXES:
        return None
    return resolved


def _swagger_dir() -> Path | None:
    try:
        import swagger_ui_bundle
    except ImportError:  # pragma: no cover - a serve extra
        return None
    return Path(swagger_ui_bundle.swagger_ui_path)


def _route_path(request: Any) -> str | None:
    """The path template of the route ``request`` matched (by path), or ``None``."""
    from starlette.routing import Match

    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE and getattr(route, "path", None):
            return str(route.path)
    return None


def _poster_url(raw_item: Any, ref: str) -> str:
    from urllib.parse import quote

    if ref.startswith(("http://", "https://")):
        return ref
    return f"/posters/{quote(str(raw_item), safe='')}"


def _version() -> str:
    from fusionrec import __version__

    return __version__
