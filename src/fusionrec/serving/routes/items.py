"""New items: ``POST /items`` (JSON with raw content per modality) and ``POST /items/{item}/image`` (an uploaded
image, stored under the content root).  File content must resolve under the content root (symlinks followed)."""

import hashlib
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from fusionrec.serving import schemas as S
from fusionrec.serving.engine import ServingEngine
from fusionrec.serving.openapi import FILE_KINDS
from fusionrec.serving.routes.deps import WRITE, EngineDep, SettingsDep, write_auth
from fusionrec.serving.rules import shorten_text
from fusionrec.serving.settings import ServingSettings

__all__ = ["IMAGE_SUFFIXES", "resolve_under", "router"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp")


def resolve_under(root: Path, value: str, what: str = "path") -> Path:
    """``value`` (relative to ``root`` or absolute) resolved with symlinks; HTTP 400 when it leaves ``root`` or
    is not a file."""
    base = Path(root).resolve()
    p = Path(value)
    resolved = (p if p.is_absolute() else base / p).resolve()
    if not resolved.is_relative_to(base):
        raise HTTPException(status_code=400, detail=f"{what!r}: {value!r} is outside the content root")
    if not resolved.is_file():
        raise HTTPException(status_code=400, detail=f"{what!r}: no file {value!r} under the content root")
    return resolved


def _resolve(settings: ServingSettings, value: Any, modality: str) -> str:
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


def add_item(
    eng: ServingEngine,
    settings: ServingSettings,
    item: Any,
    meta: dict[str, Any],
    content: dict[str, Any],
    features: Any,
    text: Any,
) -> S.Created:
    """Store and place a new item: content named like a display column fills it, file content is resolved under
    the content root (an image becomes the poster when none is given)."""
    columns = eng.state.item_meta
    side = eng.state.side
    kinds = {} if side is None else side.item_kinds
    for name, value in content.items():  # content named like a display column fills it (filters, page)
        if name in columns and name not in meta and isinstance(value, str | list):
            meta[name] = value
    for name, value in list(content.items()):
        kind = kinds.get(name)
        if kind in FILE_KINDS and value is not None:
            content[name] = _resolve(settings, value, name)
            if kind == "image" and "poster" not in meta:
                meta["poster"] = content[name]
    idx = eng.post_item(item, meta, features, text, content)
    return S.Created(id=item, index=idx)


def router(settings: ServingSettings) -> APIRouter:
    """The item writes (the upload route is in the schema only with a content root)."""
    api = APIRouter(tags=["write"])

    @api.post("/items", response_model=S.Created, status_code=201, dependencies=[Depends(write_auth)], responses=WRITE)
    def post_item(*, body: S.ItemIn, eng: EngineDep, settings: SettingsDep) -> S.Created:
        """Add an item, recommendable at once: its raw ``content`` (per modality name: text, labels, an image path
        under the content root) is encoded with the bundle's encoders and places it next to similar items."""
        meta: dict[str, Any] = dict(body.meta)
        if body.title is not None:
            meta["title"] = shorten_text(body.title)  # a display field: one short line
        if body.poster is not None:  # an http(s) URL, given to clients as is (never fetched or redirected to)
            meta["poster"] = body.poster
        return add_item(eng, settings, body.item, meta, dict(body.content), body.features, body.text)

    @api.post(
        "/items/{item}/image",
        response_model=S.Created,
        status_code=201,
        dependencies=[Depends(write_auth)],
        responses=WRITE,
        include_in_schema=settings.content_root is not None,  # uploads need a content root
    )
    async def post_item_image(
        *,
        item: str = PathParam(..., min_length=1, max_length=S.MAX_ID_LENGTH),
        file: UploadFile = File(..., description="the item's image (jpg, png, gif, webp)"),  # noqa: B008
        modality: str | None = Form(None, description="image modality name (default: the bundle's first)"),
        title: str | None = Form(None),
        eng: EngineDep,
        settings: SettingsDep,
    ) -> S.Created:
        """Add an item from an uploaded image (multipart), stored under the content root and placed by it."""
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
        meta: dict[str, Any] = {} if title is None else {"title": shorten_text(title)}
        return await run_in_threadpool(add_item, eng, settings, item, meta, {name: str(target)}, None, None)

    return api
