"""The page keeps an id inside its index's URL (issue #32): `..` segments in an id never reach another index's
item. Real Chromium against a real uvicorn server."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.config import Settings
from tests.servers import serving

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
if not CHROMIUM.exists():
    pytest.skip("Debian's Chromium is not installed at /usr/bin/chromium", allow_module_level=True)

LOGITS = [0.1 * i for i in range(10)]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, default_data_dir: Path) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("page-ids") / "data"
    shutil.copytree(default_data_dir, data_dir)
    settings = Settings(data_dir=data_dir, device="cpu", faiss_gpu="false", num_threads=2)  # type: ignore[arg-type]
    with serving(settings) as base_url:
        yield base_url


def test_an_id_with_dot_segments_stays_in_its_index(url: str) -> None:
    default = httpx.get(f"{url}/v1/info").json()["index"]["name"]
    assert httpx.post(f"{url}/v1/indexes", json={"name": "vault", "model": "digits-cnn"}).status_code == 201
    secret = {"items": [{"id": "secret", "logits": LOGITS}]}
    assert httpx.post(f"{url}/v1/indexes/vault/items", json=secret).status_code == 200
    climbing = "../../vault/items/secret"
    sneaky = {"items": [{"id": f"{climbing}-x", "logits": LOGITS}]}  # an id of the default index, slashes and all
    assert httpx.post(f"{url}/v1/items", json=sneaky).status_code == 200

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page()
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.set_default_timeout(15_000)
        page.goto(f"{url}/?id={climbing}")
        page.wait_for_selector(f"#error:has-text('{climbing}')")  # not in the default index: the page says so
        page.goto(f"{url}/?id={climbing}-x")  # the id that is there, slashes and dots included, is found
        page.wait_for_function("() => document.querySelectorAll('#results .result').length > 0")
        assert page.locator("#error").is_hidden()
        browser.close()
    assert not [r for r in requested if "/v1/indexes/vault" in r], requested
    assert any(f"/v1/indexes/{default}/items/..%2F..%2Fvault" in r for r in requested), requested
