"""The web page and its assets (``/``, ``/web/{name}``), posters (``/posters/{item}``) and the offline Swagger UI
(``/docs``, served from the ``swagger-ui-bundle`` package); none of them is in the OpenAPI schema."""

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from fusionrec.serving.routes.deps import EngineDep, SettingsDep
from fusionrec.serving.routes.items import IMAGE_SUFFIXES

__all__ = ["WEB_DIR", "poster_file", "router"]

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
SWAGGER_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
WEB_ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}


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


def router() -> APIRouter:
    """The page, posters and docs."""
    api = APIRouter(include_in_schema=False)
    swagger = _swagger_dir()

    @api.get("/posters/{item}", tags=["web"])
    def poster(*, item: str, eng: EngineDep, settings: SettingsDep) -> Any:
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

    @api.get("/docs")
    def docs(request: Request) -> HTMLResponse:
        from fastapi.openapi.docs import get_swagger_ui_html

        app = request.app
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    @api.get("/docs-assets/{name}")
    def docs_asset(name: str) -> FileResponse:
        if swagger is None or name not in SWAGGER_ASSETS:
            raise HTTPException(status_code=404, detail="not found (pip install swagger-ui-bundle for /docs)")
        return FileResponse(swagger / name, media_type=SWAGGER_ASSETS[name])

    @api.get("/")
    def index_page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    @api.get("/web/{name}")
    def web_asset(name: str) -> FileResponse:
        if name not in WEB_ASSETS:
            raise HTTPException(status_code=404, detail="not found")
        return FileResponse(WEB_DIR / name, media_type=WEB_ASSETS[name])

    return api
