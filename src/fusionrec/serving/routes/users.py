"""Users: ``GET /users``, ``GET /users/{user}``, ``GET /users/{user}/history``, ``POST /users`` (profile and
friends), ``DELETE /users/{user}`` (forget), and ``POST /events`` (the users' interactions)."""

import time
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import Response

from fusionrec.serving import schemas as S
from fusionrec.serving.catalogue import UnknownUserError
from fusionrec.serving.http import answers
from fusionrec.serving.routes.deps import (
    READ,
    WRITE,
    EngineDep,
    SettingsDep,
    items_out,
    user_auth,
    write_auth,
)
from fusionrec.serving.rules import id_key
from fusionrec.serving.store import Event

__all__ = ["router"]


def router() -> APIRouter:
    """The user routes."""
    api = APIRouter()

    @api.get("/users", tags=["users"], dependencies=[Depends(user_auth)], responses=READ)
    def list_users(
        *, limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0), eng: EngineDep
    ) -> dict[str, Any]:
        """Some user ids (for the web page)."""
        st = eng.state
        with st.lock:
            return {"total": st.catalogue.n_known_users, "users": st.catalogue.known_users(offset, limit)}

    @api.get("/users/{user}", tags=["users"], dependencies=[Depends(user_auth)], responses=READ)
    def get_user(*, user: str = PathParam(..., max_length=S.MAX_ID_LENGTH), eng: EngineDep) -> dict[str, Any]:
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

    @api.delete(
        "/users/{user}",
        tags=["users"],
        status_code=204,
        response_class=Response,
        dependencies=[Depends(write_auth)],
        responses=answers(401, 404),
    )
    def delete_user(
        *, user: str = PathParam(..., min_length=1, max_length=S.MAX_ID_LENGTH), eng: EngineDep
    ) -> Response:
        """Forget a user: its events and profile leave the store, its row the served model, its links the social
        graph; the next retrain no longer sees it.  204: forgotten; 404: unknown (or already forgotten)."""
        try:
            eng.delete_user(user)
        except UnknownUserError:
            raise HTTPException(
                status_code=404, detail="unknown user: nothing to forget (never known here, or already forgotten)"
            ) from None
        return Response(status_code=204)

    @api.api_route("/users/", methods=["GET", "DELETE"], include_in_schema=False)
    def empty_user_id() -> Response:
        """``/users/`` with an empty id: a clear 422 (it was a 307 redirect to ``/users``)."""
        raise HTTPException(
            status_code=422, detail="the user id is empty: name the user, as in /users/{user} (e.g. /users/42)"
        )

    @api.get(
        "/users/{user}/history",
        tags=["users"],
        response_model=S.HistoryOut,
        dependencies=[Depends(user_auth)],
        responses=READ,
    )
    def history(
        *,
        user: str = PathParam(..., max_length=S.MAX_ID_LENGTH),
        limit: int = Query(50, ge=1, le=10_000),
        eng: EngineDep,
    ) -> S.HistoryOut:
        """The user's items (training data and online events), highest value first."""
        st = eng.state
        with st.lock:
            u = st.require_user(user)
            items, values = st.history_arrays(u)
            attrs = st.user_attrs.get(u, {})
        order = sorted(range(len(items)), key=lambda j: -values[j])[:limit]
        return S.HistoryOut(user=st.user_raw[u], items=items_out(st, items[order], values[order]), attributes=attrs)

    @api.post(
        "/users",
        tags=["write"],
        response_model=S.UserCreated,
        status_code=201,
        dependencies=[Depends(write_auth)],
        responses=WRITE,
    )
    def post_user(*, body: S.UserIn, eng: EngineDep) -> S.UserCreated:
        """Create a user or update its profile and links; profile-only users get popular, attribute-matching items.

        ``friends`` (links to known users, weight >= 0) replaces the user's links: a social model (``friends_used``)
        recommends a user with no history through its friends (their weighted mean taste), and with a history
        blends the two, again at each event.  Unknown friends: 404 naming them; self-links and zero weights are
        dropped and a repeated friend keeps its largest weight."""
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

    @api.post(
        "/events", tags=["write"], response_model=S.EventsOut, dependencies=[Depends(write_auth)], responses=WRITE
    )
    def post_events(*, body: S.EventsIn, eng: EngineDep, settings: SettingsDep) -> S.EventsOut:
        """Store a batch of events (one transaction, durable before the answer) and fold them in at once."""
        if len(body.events) > settings.max_events_per_request:
            raise HTTPException(
                status_code=413, detail=f"at most {settings.max_events_per_request} events per request; split the batch"
            )
        now = int(time.time())
        events = [Event(id_key(e.user), id_key(e.item), e.value, e.timestamp or now) for e in body.events]
        seqs = eng.post_events(events)
        return S.EventsOut(stored=len(seqs), seqs=seqs)

    return api
