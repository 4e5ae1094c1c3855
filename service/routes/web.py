"""The web page (`GET /`, `/ui/...`) and the API docs (`/docs`, `/redoc`), served from installed files only.

The page is plain HTML, CSS and JavaScript modules under `service/web/`; the docs' Swagger UI and ReDoc
bundles come from the `fastapi-offline` package. Nothing is fetched from a CDN, so both work offline: ReDoc's
bundle draws its sidebar logo from cdn.redoc.ly, so `/docs/redoc.js` serves it with the local favicon instead.
"""

from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
DOCS_ASSETS = "/docs/assets"
#: What ReDoc's bundle loads from a CDN (its "API docs by Redocly" logo), and the local file drawn instead.
REDOC_CDN_LOGO, REDOC_LOCAL_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg", f"{DOCS_ASSETS}/favicon.png"
#: The page runs only its own scripts and styles and talks only to this service.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


class RevalidatedFiles(StaticFiles):
    """Static files that browsers revalidate (ETag) on each load, so an upgraded service is seen at once.

    With `page_policy`, every file carries the page's headers (`PAGE_HEADERS`): `/ui/index.html` is the page
    itself and must not be framed or run foreign scripts any more than `/` may.
    """

    def __init__(self, *, directory: Path, page_policy: bool = False) -> None:
        super().__init__(directory=directory)
        self.page_policy = page_policy

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if self.page_policy:
            response.headers.update(PAGE_HEADERS)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def docs_assets_dir() -> Path:
    """Swagger UI 5 and ReDoc bundles shipped by `fastapi-offline` (Swagger UI 5 renders OpenAPI 3.1)."""
    return Path(str(files("fastapi_offline") / "static"))


@router.get("/")
def get_page() -> FileResponse:
    """The web page."""
    return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/docs")
def get_swagger_ui() -> HTMLResponse:
    """Swagger UI for the OpenAPI schema, with local assets."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="logit-search - API docs",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
    )


@router.get("/redoc")
def get_redoc() -> HTMLResponse:
    """ReDoc for the OpenAPI schema, with local assets."""
    return get_redoc_html(
        openapi_url="/openapi.json",
        title="logit-search - API reference",
        redoc_js_url="/docs/redoc.js",
        redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        with_google_fonts=False,
    )


@router.get("/docs/redoc.js")
def get_redoc_script() -> Response:
    """ReDoc's bundle with its one CDN image replaced by a local one."""
    return Response(_redoc_script(), media_type="text/javascript", headers={"Cache-Control": "no-cache"})


@lru_cache(maxsize=1)
def _redoc_script() -> bytes:
    bundle = (docs_assets_dir() / "redoc.standalone.js").read_text(encoding="utf-8")
    return bundle.replace(REDOC_CDN_LOGO, REDOC_LOCAL_LOGO).encode()


def install_web(app: FastAPI) -> None:
    """Serve the page, its files under `/ui/`, and the docs with their assets under `/docs/assets/`."""
    app.mount("/ui", RevalidatedFiles(directory=WEB_DIR, page_policy=True), name="ui")
    app.mount(DOCS_ASSETS, RevalidatedFiles(directory=docs_assets_dir()), name="docs-assets")
    app.include_router(router)
