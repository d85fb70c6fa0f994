"""Request and response bodies of the HTTP API (pydantic; imported only by :func:`create_app`).

Validation at the edge: everything a request body carries is typed and bounded here, so that an accepted write can
never make a later read answer 500 or a later retrain fail.

* ids are strings of 1..:data:`MAX_ID_LENGTH` characters (or JSON integers of at most 256 digits, ``1.0`` being
  ``1`` as in JSON Schema), valid Unicode (no lone surrogates), no control characters; JSON ``true`` is refused,
  never coerced;
* numbers are finite (``NaN`` / ``Infinity`` literals refused), timestamps are unix seconds before year 10000;
* attribute and metadata keys are identifiers (letters, digits, ``_``; not starting with ``_``), values are text or
  lists of text;
* every text is valid Unicode (a lone surrogate cannot be stored as UTF-8).

* friends: a link to the user itself and a zero weight are dropped, a repeated friend keeps its largest weight
  (:func:`fusionrec.serving.rules.clean_links`, here once: the engine trusts it).

The value of an event is further checked against the served model's domain by the engine
(:meth:`~fusionrec.serving.state.OnlineState.check_values`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, StrictBool, model_validator

from fusionrec.serving.rules import clean_links, id_key

__all__ = ["MAX_FRIENDS", "MAX_ID_LENGTH", "MAX_TEXT_LENGTH", "MAX_TIMESTAMP", "valid_text"]

#: longest raw id (characters)
MAX_ID_LENGTH = 256
#: longest free text (``text``, text content)
MAX_TEXT_LENGTH = 100_000
#: longest title, label or attribute value
MAX_SHORT_LENGTH = 2_000
#: last unix second of year 9999
MAX_TIMESTAMP = 253_402_300_799
#: the largest magnitude of a number inside attributes or dense features
MAX_ABS_NUMBER = 1e15
#: most social links one ``POST /users`` may carry
MAX_FRIENDS = 1000


def valid_text(value: str) -> str:
    """``value`` when it is valid Unicode (encodable as UTF-8), else ``ValueError`` (HTTP 422)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text must be valid Unicode (it holds a lone surrogate)") from exc
    return value


def _valid_id(value: str) -> str:
    valid_text(value)
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("ids cannot hold control characters")
    return value


#: attribute and metadata keys (ASCII identifiers, not starting with ``_``: those are the server's own)
KEY_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
#: ids: no control characters
ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"

Text = Annotated[str, Field(max_length=MAX_TEXT_LENGTH), AfterValidator(valid_text)]
#: a title, label or attribute value
Short = Annotated[str, Field(max_length=MAX_SHORT_LENGTH), AfterValidator(valid_text)]
StrId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN), AfterValidator(_valid_id)]


def _json_integer(value: Any) -> Any:
    """JSON integers, ``1.0`` included (JSON Schema's integer); never ``true`` and never a string."""
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON integer (ids that are not numbers are sent as strings)")
    return value


def _id_digits(value: int) -> int:
    if len(str(value)) > MAX_ID_LENGTH:
        raise ValueError(f"an id has at most {MAX_ID_LENGTH} characters")
    return value


#: JSON integers (``1.0`` is ``1``, as in JSON Schema) of at most 256 digits; beyond int64 they are kept as strings.
#: No numeric bound is declared: validators that compare big integers as floats would misjudge any bound above 2^53
IntId = Annotated[int, BeforeValidator(_json_integer), AfterValidator(_id_digits)]
#: a raw id: a string (1..256 characters) or a JSON integer (|id| <= 2^53); stored and compared as its string
Id = IntId | StrId
Key = Annotated[str, Field(pattern=KEY_PATTERN)]
#: a finite number (JSON integers too; ``true`` is no number)
Number = Annotated[float, Strict(), Field(allow_inf_nan=False, ge=-MAX_ABS_NUMBER, le=MAX_ABS_NUMBER)]
Labels = Annotated[list[Short], Field(max_length=100)]
Attr = Short | Labels | StrictBool | Number
#: a mapping's keys are :data:`KEY_PATTERN` (declared in the schema: no other property names)
CLOSED: dict[str, Any] = {"additionalProperties": False}


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: Id = Field(description="raw user id (created on its first event)")
    item: Id = Field(description="raw item id (must exist: in the bundle or added with POST /items)")
    value: Annotated[float, Strict()] = Field(
        1.0,
        allow_inf_nan=False,
        ge=-MAX_ABS_NUMBER,
        le=MAX_ABS_NUMBER,
        description="rating (within the training rating range), or a weight >= 0 / 1 for implicit feedback",
    )
    timestamp: Annotated[int, Field(ge=0, le=MAX_TIMESTAMP), BeforeValidator(_json_integer)] | None = Field(
        None, description="unix seconds (default: now)"
    )


class EventsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[EventIn] = Field(min_length=1, description="a batch, stored in one transaction")


class EventsOut(BaseModel):
    stored: int
    seqs: list[int]


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: Id
    title: Short | None = None
    poster: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2000)] | None = Field(
        None, description="an http(s) URL; image files go in content (their image modality) or the upload route"
    )
    meta: dict[Key, Short | Labels] = Field(
        default_factory=dict,
        max_length=100,
        description="attributes, e.g. genres (keys are identifiers)",
        json_schema_extra=CLOSED,
    )
    content: dict[Key, Text | Labels | list[Number] | None] = Field(
        default_factory=dict,
        max_length=100,
        json_schema_extra=CLOSED,
        description="raw content per item modality of the bundle: text, labels, an image path under the content root",
    )
    features: list[Number] | None = Field(
        None, max_length=100_000, description="dense features of the bundle's 'features' modality"
    )
    text: Text | None = Field(None, description="raw text matched against the catalogue titles")


class FriendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: Id = Field(description="raw id of a known user (in the bundle, or created with POST /users or /events)")
    weight: Annotated[float, Strict()] = Field(
        1.0,
        allow_inf_nan=False,
        ge=0,
        le=MAX_ABS_NUMBER,
        description="trust / friendship strength >= 0 (0 drops the link; a repeated friend keeps its largest weight)",
    )


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: Id
    attributes: dict[Key, Attr] = Field(
        default_factory=dict,
        max_length=100,
        description="profile, e.g. {'genres': ['Comedy']} (empty: the profile is kept)",
        json_schema_extra=CLOSED,
    )
    friends: list[FriendIn] | None = Field(
        None,
        max_length=MAX_FRIENDS,
        description="links to known users; replaces the user's links ([] removes them, omitted keeps them). Social "
        "models place a user with no history through its friends; self-links and zero weights are dropped, a "
        "repeated friend keeps its largest weight",
    )

    @model_validator(mode="after")
    def _clean_friends(self) -> UserIn:
        """The links rule, applied here once (:func:`fusionrec.serving.rules.clean_links`)."""
        if self.friends is not None:
            user = id_key(self.user)
            kept = clean_links((user, id_key(f.user), f.weight) for f in self.friends)
            self.friends = [FriendIn(user=friend, weight=w) for (_, friend), w in kept.items()]
        return self


class UserCreated(BaseModel):
    id: Id
    index: int
    friends: int = Field(description="links the user has now (posted ones, after dropping self-links and zeros)")
    friends_used: bool = Field(
        description="whether the served model places users through their friends (social models); else the links "
        "are stored for a retrain and do not change this model's recommendations"
    )
    personalised: bool = Field(description="whether the model scores the user itself (else popular items)")


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


class RetrainOut(BaseModel):
    started: bool = Field(description="whether a retrain was started by this request")
    status: dict[str, Any] = Field(description="state (idle, running, failed), last_error (the reason), runs")


class Problem(BaseModel):
    """An error answer."""

    detail: Any
    hint: str | None = None
