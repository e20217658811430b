"""The gateway's browser-facing routes without Ray: the try page, the OpenAPI bearer scheme and
the API docs pages, which must load nothing from outside the server."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

KEY = "page-key-5d1e"
AUTH = {"Authorization": f"Bearer {KEY}"}
# Anything a page would fetch from another host: an absolute or protocol-relative URL.
EXTERNAL = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}""", re.IGNORECASE)
_ASSET = re.compile(r"""<(?:script|img)\b[^>]*\bsrc=["']([^"']+)|<link\b[^>]*\bhref=["']([^"']+)""")


def _fetched(html: str) -> list[str]:
    """The URLs an HTML page loads by itself: scripts, styles, icons and images."""
    return [src or href for src, href in _ASSET.findall(html)]


@pytest.fixture
def gateway(monkeypatch):
    """A client of the gateway app with no model, as a replica runs it (``docs`` is settable)."""
    from ray import serve

    from raytag.serving import app as serving
    from raytag.serving.settings import IngressLimits

    monkeypatch.setenv("PAGE_TEST_KEYS", KEY)
    # The class as written, before @serve.ingress wrapped it for a replica.
    plain = serving.Gateway.__mro__[1]
    assert plain.__qualname__ == "Gateway"

    def client(docs: str = "private") -> TestClient:
        instance = plain(IngressLimits(api_keys_env="PAGE_TEST_KEYS", docs=docs), None, {})
        # Serve hands each route the replica's instance through its replica context.
        monkeypatch.setattr(serve, "get_replica_context", lambda: SimpleNamespace(servable_object=instance))
        return TestClient(serving.api)

    return client


def test_try_page_is_open_and_everything_it_loads_is_served_here(gateway) -> None:
    client = gateway("off")  # the page does not depend on the docs setting
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for element in ('id="key"', 'id="model"', 'id="text"', 'id="tag"', 'id="marked"'):
        assert element in html
    csp = page.headers["content-security-policy"]
    assert "connect-src 'self'" in csp and "script-src 'self'" in csp
    assets = _fetched(html)
    assert {"ui/try.js", "ui/try.css"} <= set(assets)
    for url in assets:
        assert not EXTERNAL.match(url) and not url.startswith("/"), f"{url} is not relative to the page"
        asset = client.get("/" + url)
        assert asset.status_code == 200 and asset.content, url
        assert not EXTERNAL.search(asset.text) or url.endswith(".svg"), f"{url} refers to another host"
    script = client.get("/ui/try.js")
    assert script.headers["content-type"].startswith("text/javascript")
    # It calls the same API as any client, with the typed key as a bearer token.
    assert "v1/models" in script.text and "Bearer ${key}" in script.text
    for missing in ("/ui/app.py", "/ui/..%2fapp.py", "/ui/index.html.bak"):
        assert client.get(missing).status_code == 404, missing


def test_openapi_declares_the_bearer_scheme_on_the_guarded_routes(gateway) -> None:
    document = gateway("public").get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes == {"bearer": {"type": "http", "scheme": "bearer", "description": schemes["bearer"]["description"]}}
    for path, method in (("/v1/models", "get"), ("/v1/models/{name}/tag", "post")):
        operation = document["paths"][path][method]
        assert operation["security"] == [{"bearer": []}], path
        # The key is the scheme's business, not a header parameter of each route.
        assert all(p["name"].lower() != "authorization" for p in operation.get("parameters", [])), path
    for path in ("/healthz", "/readyz"):
        assert "security" not in document["paths"][path]["get"], path
    assert not any(path in document["paths"] for path in ("/", "/docs", "/ui/{name}", "/docs-assets/{name}"))


def test_a_scheme_alone_is_not_a_key(gateway) -> None:
    client = gateway()
    assert client.get("/v1/models", headers=AUTH).json() == {"models": []}
    for header in ({}, {"Authorization": KEY}, {"Authorization": "Bearer"}, {"Authorization": "Bearer wrong"},
                   {"Authorization": f"Basic {KEY}"}):
        response = client.get("/v1/models", headers=header)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer", header


@pytest.mark.parametrize(("page", "script"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
def test_docs_pages_load_only_files_served_here(gateway, page, script) -> None:
    client = gateway("public")
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    assets = _fetched(html)
    assert f"/docs-assets/{script}" in assets
    for url in assets:
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 1000, url
    if page == "/docs":
        assert "/docs-assets/swagger-ui.css" in assets
        # Swagger UI would otherwise ask a public validator service about the document.
        assert '"validatorUrl": null' in html
    bundle = client.get(f"/docs-assets/{script}")
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert client.get("/docs-assets/../app.py").status_code == 404
    assert client.get("/docs-assets/secret.txt").status_code == 404


def test_docs_and_their_files_follow_the_docs_setting(gateway) -> None:
    paths = ("/openapi.json", "/docs", "/redoc", "/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css")
    private = gateway("private")
    for path in paths:
        assert private.get(path).status_code == 401, path
        assert private.get(path, headers=AUTH).status_code == 200, path
    off = gateway("off")
    for path in paths:
        assert off.get(path, headers=AUTH).status_code == 404, path
    public = gateway("public")
    for path in paths:
        assert public.get(path).status_code == 200, path


def test_every_file_of_the_page_is_installed_as_package_data() -> None:
    import glob
    from pathlib import Path

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pytest brings tomli there
        import tomli as tomllib

    repo = Path(__file__).resolve().parents[2]
    globs = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["raytag"]
    root = repo / "platform" / "raytag"
    shipped = {path for pattern in globs for path in glob.glob(pattern, root_dir=root)}
    page = {p.relative_to(root).as_posix() for p in (root / "serving" / "page").rglob("*") if p.is_file()}
    assert {"serving/page/index.html", "serving/page/try.js", "serving/page/try.css"} <= page
    assert page <= shipped, f"not package data: {sorted(page - shipped)}"
