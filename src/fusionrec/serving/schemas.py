"""Request and response bodies of the HTTP API (pydantic; imported only by :func:`create_app`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Id = int | str


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: Id = Field(description="raw user id (created on its first event)")
    item: Id = Field(description="raw item id (must exist: in the bundle or added with POST /items)")
    value: float = Field(1.0, allow_inf_nan=False, description="rating, weight or 1 for implicit feedback")
    timestamp: int | None = Field(None, ge=0, description="unix seconds (default: now)")


class EventsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[EventIn] = Field(min_length=1, description="a batch, stored in one transaction")


class EventsOut(BaseModel):
    stored: int
    seqs: list[int]


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: Id
    title: str | None = None
    poster: str | None = None
    meta: dict[str, str | list[str]] = Field(default_factory=dict, description="attributes, e.g. genres")
    content: dict[str, str | list[str] | list[float] | None] = Field(
        default_factory=dict,
        description="raw content per item modality of the bundle: text, labels, an image path under the content root",
    )
    features: list[float] | None = Field(None, description="dense features of the bundle's 'features' modality")
    text: str | None = Field(None, max_length=100_000, description="raw text matched against the catalogue titles")


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: Id
    attributes: dict[str, Any] = Field(default_factory=dict, description="profile, e.g. {'genres': ['Comedy']}")


class ItemOut(BaseModel):
    item: Id
    score: float | None = None
    title: str | None = None
    poster: str | None = None


class RecommendOut(BaseModel):
    user: Id
    k: int
    items: list[ItemOut]
    index: str


class SimilarOut(BaseModel):
    item: Id
    items: list[ItemOut]


class HistoryOut(BaseModel):
    user: Id
    items: list[ItemOut]
    attributes: dict[str, Any] = Field(default_factory=dict)


class ExplainOut(BaseModel):
    user: Id
    item: Id
    score: float
    similar_history: list[dict[str, Any]] = Field(description="history items most similar to the item")
    content: dict[str, Any] | None = Field(
        None, description="the modality with the most similar content: its history items and shared words"
    )


class Created(BaseModel):
    id: Id
    index: int
