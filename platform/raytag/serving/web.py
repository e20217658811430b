"""What the gateway serves to a browser: the try page at ``/`` and the API documentation pages.

Everything a page loads comes from the installed packages, never from a CDN, so the pages work
on a machine without internet access: the try page's files are package data of raytag
(``serving/page/``); Swagger UI and ReDoc are the builds shipped in the ``fastapi-offline`` wheel.

The try page is a static page: it holds no secret and learns nothing at build time. The person
types an API key into it, and it calls the same ``/v1/models`` API as every other client, with
``Authorization: Bearer <key>``. Its URLs are relative, so it also works behind a route prefix
(opened as ``<prefix>/``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

# Where the docs pages fetch their scripts and styles; each is gated like the docs pages.
DOCS_ASSETS_PATH = "/docs-assets"
OPENAPI_URL = "/openapi.json"

_PAGE = resources.files("raytag.serving") / "page"
_PAGE_ASSETS = {"try.js": "text/javascript; charset=utf-8", "try.css": "text/css; charset=utf-8",
                "favicon.svg": "image/svg+xml"}
_DOCS_ASSETS = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8",
                "swagger-ui.css": "text/css; charset=utf-8",
                "redoc.standalone.js": "text/javascript; charset=utf-8",
                "favicon.png": "image/png"}

# The page handles an API key: it may only talk to this server and run its own files.
_PAGE_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # A new raytag version may change the page; the browser asks again rather than guess.
    "Cache-Control": "no-cache",
}

router = APIRouter()


@router.get("/", include_in_schema=False)
async def try_page() -> HTMLResponse:
    """The page where a person picks a model, pastes text and sees the entities highlighted."""
    return HTMLResponse((_PAGE / "index.html").read_text(encoding="utf-8"), headers=_PAGE_HEADERS)


@router.get("/ui/{name}", include_in_schema=False)
async def page_asset(name: str) -> Response:
    if name not in _PAGE_ASSETS:
        raise HTTPException(404, f"no such file: {name}")
    return Response((_PAGE / name).read_bytes(), media_type=_PAGE_ASSETS[name], headers=_PAGE_HEADERS)


def docs_static_dir() -> Path:
    """The installed Swagger UI and ReDoc builds (a dependency's package data)."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def docs_asset(name: str) -> FileResponse:
    if name not in _DOCS_ASSETS:
        raise HTTPException(404, f"no such file: {name}")
    # The files change only with the installed package version.
    return FileResponse(docs_static_dir() / name, media_type=_DOCS_ASSETS[name],
                        headers={"Cache-Control": "public, max-age=86400"})


def swagger_page(title: str) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=OPENAPI_URL, title=title,
        swagger_js_url=f"{DOCS_ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS_PATH}/favicon.png",
        # No call to the public validator service; keys typed into Authorize stay in the tab.
        swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
    )


def redoc_page(title: str) -> HTMLResponse:
    return get_redoc_html(openapi_url=OPENAPI_URL, title=title,
                          redoc_js_url=f"{DOCS_ASSETS_PATH}/redoc.standalone.js",
                          redoc_favicon_url=f"{DOCS_ASSETS_PATH}/favicon.png", with_google_fonts=False)
