"""Operations: ``GET /health``, ``GET /metrics`` (Prometheus text), ``POST /admin/retrain`` and its status."""

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from fusionrec.serving import schemas as S
from fusionrec.serving.engine import RetrainError
from fusionrec.serving.http import answers, safe
from fusionrec.serving.routes.deps import READ, EngineDep, read_auth, write_auth

__all__ = ["router"]


def router() -> APIRouter:
    """The operations routes."""
    api = APIRouter(tags=["ops"])

    @api.get("/health", responses=answers(400))
    def health(*, eng: EngineDep) -> dict[str, Any]:
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
                "placement": st.placement_kind,
            },
            "retrain": eng.retrain_status,
        }

    @api.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}},
    )
    def prometheus(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @api.post(
        "/admin/retrain",
        status_code=202,
        response_model=S.RetrainOut,
        dependencies=[Depends(write_auth)],
        responses={
            **answers(401, 413),
            400: {"model": S.RetrainOut, "description": "the retrain could not start or failed; status has the reason"},
            409: {"model": S.RetrainOut, "description": "a retrain is already running"},
        },
    )
    def retrain(
        *,
        wait: bool = Query(False, description="block until the new bundle is live"),
        eng: EngineDep,
    ) -> Any:
        """Refit on the bundle's data plus every stored event in the background, then swap it in.

        202: started (with ``wait``: finished and live); 409: one is already running; 400: it failed (its data
        fail validation, or, with ``wait``, the fit failed) and ``status.last_error`` says why."""
        try:
            started = eng.retrain(wait=wait)
        except RetrainError:
            return JSONResponse(status_code=400, content=safe({"started": False, "status": dict(eng.retrain_status)}))
        if not started:
            return JSONResponse(status_code=409, content=safe({"started": False, "status": dict(eng.retrain_status)}))
        return S.RetrainOut(started=True, status=dict(eng.retrain_status))

    @api.get("/admin/retrain", dependencies=[Depends(read_auth)], responses=READ)
    def retrain_status(*, eng: EngineDep) -> dict[str, Any]:
        """The last retrain: state (idle, running, failed), last_error (the reason), runs, last_finished."""
        return dict(safe(dict(eng.retrain_status)))

    return api
