"""What every route shares: the engine and settings of the app, the API key checks, the query parameters whose rules
are applied here once (``k``, ids, candidates), and the item list of an answer.

Routes take these as FastAPI dependencies, so each rule is checked at the edge, once, and the engine trusts it.
"""

import hmac
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Query, Request

from fusionrec.serving import schemas as S
from fusionrec.serving.engine import ServingEngine
from fusionrec.serving.http import answers
from fusionrec.serving.rules import parse_candidates
from fusionrec.serving.settings import ServingSettings
from fusionrec.serving.state import OnlineState

__all__ = [
    "READ",
    "WRITE",
    "Candidates",
    "EngineDep",
    "ItemQ",
    "SettingsDep",
    "UserQ",
    "candidates_query",
    "get_engine",
    "get_settings",
    "items_out",
    "list_length",
    "read_auth",
    "user_auth",
    "write_auth",
]

#: the error answers of reads and of writes (declared in the OpenAPI schema)
READ = answers(400, 401, 404)
WRITE = answers(400, 401, 404, 413)
#: a raw user / item id in a query
UserQ = Query(..., min_length=1, max_length=S.MAX_ID_LENGTH, description="raw user id")
ItemQ = Query(..., min_length=1, max_length=S.MAX_ID_LENGTH, description="raw item id")


def get_engine(request: Request) -> ServingEngine:
    """The app's :class:`~fusionrec.serving.engine.ServingEngine`."""
    engine: ServingEngine = request.app.state.engine
    return engine


def get_settings(request: Request) -> ServingSettings:
    """The app's :class:`~fusionrec.serving.settings.ServingSettings`."""
    settings: ServingSettings = request.app.state.settings
    return settings


def _check_key(settings: ServingSettings, key: str | None) -> None:
    if settings.api_key is None:
        return
    if key is None or not hmac.compare_digest(key.encode(), settings.api_key.encode()):
        raise HTTPException(status_code=401, detail="missing or wrong X-API-Key header")


def write_auth(request: Request, x_api_key: str | None = Header(None, alias="X-API-Key")) -> None:
    """Writes need the key when one is configured."""
    _check_key(get_settings(request), x_api_key)


def read_auth(request: Request, x_api_key: str | None = Header(None, alias="X-API-Key")) -> None:
    """Reads need it with ``read_requires_key`` (``fusionrec serve --private``)."""
    settings = get_settings(request)
    if settings.read_requires_key:
        _check_key(settings, x_api_key)


def user_auth(request: Request, x_api_key: str | None = Header(None, alias="X-API-Key")) -> None:
    """Reads revealing a user's history or profile (recommendations, explanations, users, histories)."""
    settings = get_settings(request)
    if settings.read_requires_key or settings.user_reads_require_key:
        _check_key(settings, x_api_key)


def list_length(settings: ServingSettings) -> Any:
    """The ``k`` query parameter: ``1 <= k <= max_k`` (default ``default_k``); the one check of ``k``."""
    return Query(settings.default_k, ge=1, le=settings.max_k, description=f"list length, 1..{settings.max_k}")


def candidates_query(
    candidates: str | None = Query(None, description="comma-separated raw item ids to rank among"),
) -> list[str] | None:
    """The ``candidates`` query as distinct raw item ids (:func:`fusionrec.serving.rules.parse_candidates`)."""
    return parse_candidates(candidates)


def items_out(state: OnlineState, idx: Sequence[int] | Any, scores: Any = None) -> list[S.ItemOut]:
    """Items of an answer: raw id, score, title and poster URL."""
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
                poster=(poster_url(state.item_raw[i], poster) if poster else None),
            )
        )
    return out


def poster_url(raw_item: Any, ref: str) -> str:
    """A poster as clients get it: an http(s) URL as it is, a file through ``/posters/{item}``."""
    from urllib.parse import quote

    if ref.startswith(("http://", "https://")):
        return ref
    return f"/posters/{quote(str(raw_item), safe='')}"


#: a route's engine, settings and candidates, as dependencies
EngineDep = Annotated[ServingEngine, Depends(get_engine)]
SettingsDep = Annotated[ServingSettings, Depends(get_settings)]
Candidates = Annotated[list[str] | None, Depends(candidates_query)]
