"""Reads of recommendations: ``GET /recommend``, ``GET /similar/{item}``, ``GET /explain``."""

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam

from fusionrec.serving import schemas as S
from fusionrec.serving.explain import explain as explain_state
from fusionrec.serving.explain import response_model as explain_model
from fusionrec.serving.routes.deps import (
    READ,
    Candidates,
    EngineDep,
    ItemQ,
    UserQ,
    items_out,
    list_length,
    read_auth,
    user_auth,
)
from fusionrec.serving.rules import rerank_depth
from fusionrec.serving.settings import ServingSettings

__all__ = ["RESERVED_QUERY", "router"]

#: query parameters of ``GET /recommend`` that are not attribute filters
RESERVED_QUERY = frozenset({"user", "k", "exclude_seen", "candidates", "diversify", "calibrate", "max_share"})


def router(settings: ServingSettings) -> APIRouter:
    """The recommendation reads (``k`` bounded by ``settings``)."""
    api = APIRouter(tags=["recommend"])
    K = list_length(settings)
    ExplainWords = explain_model()

    @api.get("/recommend", response_model=S.RecommendOut, dependencies=[Depends(user_auth)], responses=READ)
    def recommend(
        *,
        request: Request,
        user: str = UserQ,
        k: int = K,
        exclude_seen: bool = Query(True, description="leave out items the user already interacted with"),
        candidates: Candidates,
        diversify: float | None = Query(None, ge=0, le=1, description="re-rank for diversity (MMR trade-off)"),
        calibrate: float | None = Query(
            None, ge=0, le=1, description="re-rank so the list's genre mix matches the user's history (trade-off)"
        ),
        max_share: float | None = Query(None, ge=0, le=1, description="at most this share of a list per genre"),
        eng: EngineDep,
    ) -> S.RecommendOut:
        """Top-k items for a user; other query parameters filter by item attribute (``?genres=Comedy``).
        ``diversify`` / ``calibrate`` / ``max_share`` re-rank the model's top 100 (:mod:`fusionrec.rerank`) with the
        catalogue's labels (``genres``) as groups."""
        filters = {key: v for key, v in request.query_params.items() if key not in RESERVED_QUERY}
        st = eng.state
        spec = {
            key: v
            for key, v in (("diversify", diversify), ("calibrate", calibrate), ("max_share", max_share))
            if v is not None
        }
        depth = rerank_depth(k) if spec else k
        idx, scores = st.recommend(user, depth, exclude_seen=exclude_seen, candidates=candidates, filters=filters)
        if spec:
            idx, scores = st.rerank(user, idx, scores, k, spec)
        return S.RecommendOut(
            user=st.user_raw[st.require_user(user)], k=k, items=items_out(st, idx, scores), index=st.index_kind
        )

    @api.get("/similar/{item}", response_model=S.SimilarOut, dependencies=[Depends(read_auth)], responses=READ)
    def similar(
        *,
        item: str = PathParam(..., max_length=S.MAX_ID_LENGTH, description="raw item id"),
        k: int = K,
        eng: EngineDep,
    ) -> S.SimilarOut:
        """Items most similar to ``item`` (cosine of item factors, else co-occurrence)."""
        st = eng.state
        idx, scores = st.similar(item, k)
        return S.SimilarOut(item=st.item_raw[int(st.require_items([item])[0])], items=items_out(st, idx, scores))

    @api.get("/explain", response_model=ExplainWords, dependencies=[Depends(user_auth)], responses=READ)
    def explain(*, user: str = UserQ, item: str = ItemQ, n: int = Query(5, ge=1, le=50), eng: EngineDep) -> Any:
        """Why ``item`` for ``user`` in words (``sentence``): the history items behind it, the content it shares
        with them per modality, and for fusion models each modality's share of the score (fusionrec.explain)."""
        st = eng.state
        with st.lock:
            u, i = st.require_user(user), int(st.require_items([item])[0])
            out = explain_state(st, u, i, n)
        return ExplainWords(user=st.user_raw[u], item=st.item_raw[i], **out)

    return api
