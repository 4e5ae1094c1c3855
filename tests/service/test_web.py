"""The page's files and the docs are served from the package, offline, and without a key; the API is not."""

import re

from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings


def test_the_page_and_its_modules_are_served_with_a_strict_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for path in re.findall(r'(?:src|href)="(/ui/[^"]+)"', page.text):
        asset = client.get(path)
        assert asset.status_code == 200 and asset.headers["cache-control"] == "no-cache", path
    imports = re.findall(r'from "\./([^"]+)"', client.get("/ui/app.js").text)
    assert imports and all(client.get(f"/ui/{name}").status_code == 200 for name in imports)
    assert client.get("/ui/missing.js").status_code == 404


def test_the_docs_use_local_assets_only(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        html = client.get(path).text
        assert "cdn" not in html.lower() and "googleapis" not in html
        for asset in re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', html):
            assert client.get(asset).status_code == 200, asset
    assert "SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").text


def test_redoc_loads_nothing_from_a_cdn(client: TestClient) -> None:
    scripts = re.findall(r'<script src="([^"]+)"', client.get("/redoc").text)
    assert scripts
    for path in scripts:
        assert path.startswith("/"), path
        script = client.get(path)
        assert script.status_code == 200 and "redoc" in script.text.lower(), path
        assert "cdn.redoc.ly" not in script.text and "fonts.googleapis" not in script.text, path


def test_with_a_key_the_page_is_open_and_the_api_and_docs_are_not(settings: Settings) -> None:
    keyed = Settings(**(settings.model_dump() | {"api_key": "k"}))
    with TestClient(create_app(keyed)) as anonymous:
        for path in ("/", "/ui/app.js", "/ui/style.css"):
            assert anonymous.get(path).status_code == 200, path
        for path in ("/v1/info", "/v1/indexes", "/metrics", "/docs", "/openapi.json", "/uix", "/ui", "/ui/../v1/info"):
            assert anonymous.get(path).status_code == 401, path
        assert anonymous.get("/v1/info", headers={"X-API-Key": "k"}).status_code == 200
