"""The web page in a real headless Chromium (Debian's, driven by Playwright) against a real uvicorn server.

Screenshots go to `test-artifacts/browser/` (ignored by git) for a person to look at.
"""

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from service.config import Settings
from tests.helpers import digit_png
from tests.servers import serving

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
if not CHROMIUM.exists():
    pytest.skip(
        "Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium; .ci/run does it)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, default_data_dir: Path) -> Path:
    copy = tmp_path_factory.mktemp("page") / "data"
    shutil.copytree(default_data_dir, copy)
    return copy


def _settings(data_dir: Path, **changes: object) -> Settings:
    options: dict[str, object] = {"data_dir": data_dir, "device": "cpu", "faiss_gpu": "false", "num_threads": 2}
    return Settings(**(options | changes))


@pytest.fixture(scope="module")
def url(data_dir: Path) -> Iterator[str]:
    with serving(_settings(data_dir)) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def browser() -> Iterator["sync_api.Browser"]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: "sync_api.Browser", request: pytest.FixtureRequest) -> Iterator["sync_api.Page"]:
    """A fresh page that fails the test on a script error or a request leaving this machine."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    opened = context.new_page()
    errors: list[str] = []
    outside: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on(
        "request", lambda r: outside.append(r.url) if urlparse(r.url).hostname not in ("127.0.0.1", None) else None
    )
    opened.set_default_timeout(15_000)
    yield opened
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    opened.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
    context.close()
    assert errors == [] and [u for u in outside if not u.startswith(("blob:", "data:"))] == []


def _first_result(page: "sync_api.Page") -> str:
    return page.locator("#results .result .id").first.inner_text()


def _drop_png(page: "sync_api.Page", data: bytes) -> None:
    """Drop a PNG on the drop zone, as a person dragging a file from their desktop would."""
    transfer = page.evaluate_handle(
        """(bytes) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], "digit.png", { type: "image/png" }));
            return transfer;
        }""",
        list(data),
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})


def test_dropping_a_digit_finds_it_first_with_its_thumbnail(page: "sync_api.Page", url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#footer:has-text('1797 items')")
    _drop_png(page, digit_png(42))
    page.wait_for_selector("#results .result")
    assert _first_result(page) == "digits-42"
    thumb = page.locator("#results .result").first.locator("img")
    thumb.wait_for(state="visible")
    assert thumb.evaluate("img => img.naturalWidth") == 96
    assert page.locator("#query-thumb").is_visible() and page.locator("#top5 .bar-row").count() == 5
    assert page.locator("#query-title").inner_text() == "Query: the uploaded image"
    assert "nats" in page.locator("#entropy").inner_text()
    query = parse_qs(urlparse(page.url).query)  # an uploaded image is kept by a short handle, not its logits
    assert "logits" not in query and len(query["img"][0]) == 16
    assert page.locator("#top5").inner_text().count("scale") == 1  # bars scaled to the top probability, and say so


def test_choosing_a_file_then_clicking_a_result_searches_from_it(
    page: "sync_api.Page", url: str, tmp_path: Path
) -> None:
    png = tmp_path / "nine.png"
    png.write_bytes(digit_png(9))
    page.goto(url)
    page.wait_for_selector("#footer:has-text('1797 items')")
    page.set_input_files("#file", str(png))
    page.wait_for_selector("#results .result")
    second = page.locator("#results .result .id").nth(1).inner_text()
    page.locator("#results .result .id").nth(1).click()
    page.wait_for_selector(f"#query-title:has-text('Query: {second}')")
    page.wait_for_function("id => document.querySelector('#results .result .id')?.textContent === id", arg=second)
    assert parse_qs(urlparse(page.url).query)["id"] == [second]
    page.go_back()  # the previous query comes back from the URL (an upload, by its handle in this session)
    page.wait_for_selector("#query-title:has-text('the uploaded image')")


def test_switching_the_metric_keeps_the_state_in_the_url(page: "sync_api.Page", url: str) -> None:
    page.goto(f"{url}/?id=digits-5&k=4")
    page.wait_for_selector("#results .result")
    assert page.locator("#results .result").count() == 4
    page.select_option("#metric", "kl")
    page.wait_for_selector("#results-note:has-text('by kl')")
    assert parse_qs(urlparse(page.url).query)["metric"] == ["kl"]
    assert page.locator("#results .distance").first.inner_text().startswith("kl ")
    asked = {"queries": [{"id": "digits-5"}], "k": 4, "metric": "kl", "describe": True}
    expected = httpx.post(f"{url}/v1/search", json=asked).json()
    assert page.locator("#results .result .id").all_inner_texts() == [h["id"] for h in expected["results"][0]]
    with page.expect_download() as download:
        page.click("#download")
    saved = json.loads(Path(download.value.path()).read_text())
    assert saved["results"] == expected and saved["query"] == {"id": "digits-5"} and "agreement" in saved


def test_choosing_another_index_searches_it_with_its_own_items(page: "sync_api.Page", url: str) -> None:
    created = httpx.post(f"{url}/v1/indexes", json={"name": "mini", "model": "digits-cnn"})
    assert created.status_code == 201, created.text
    items = [{"id": f"mini-{i}", "image": base64.b64encode(digit_png(i)).decode()} for i in range(3)]
    assert httpx.post(f"{url}/v1/indexes/mini/items", json={"items": items}).status_code == 200
    page.goto(f"{url}/?id=mini-1")  # not in the default index: the page says so
    page.wait_for_selector("#error:has-text('mini-1')")
    page.select_option("#index", "mini")  # another index: the previous query and its filters are cleared
    page.wait_for_function("() => !new URLSearchParams(location.search).has('id')")
    assert page.locator("#results-section").is_hidden()
    page.fill("#query-id", "mini-1")
    page.click("#search-id")
    page.wait_for_function("() => document.querySelectorAll('#results .result').length === 3")
    assert _first_result(page) == "mini-1" and page.locator("#error").is_hidden()
    assert page.locator("#footer").inner_text().startswith("model digits-cnn · index mini: 3 items · CPU")
    assert parse_qs(urlparse(page.url).query)["index"] == ["mini"]
    page.locator("#results .result img").first.wait_for(state="visible")


def test_agreement_filters_and_comparison_come_from_the_service(page: "sync_api.Page", url: str) -> None:
    page.goto(f"{url}/?id=digits-3&t=4")
    page.wait_for_selector("[data-testid=agreement-verdict]")
    found = httpx.post(
        f"{url}/v1/search/agreement", json={"query": {"id": "digits-3"}, "k": 10, "temperature": 4}
    ).json()
    text = page.locator("#agreement-text").inner_text()
    assert f"{found['shared']} of the exact CE top-10" in text and f"overlap {found['overlap']:.2f}" in text
    page.locator(".chip", has_text='split = "test"').click()
    page.wait_for_selector(".chip.active")
    assert json.loads(parse_qs(urlparse(page.url).query)["filter"][0]) == {"split": "test"}
    page.wait_for_function("() => [...document.querySelectorAll('.result')].length > 0")
    checks = page.locator("#results .compare-pick input")
    checks.nth(0).check()
    checks.nth(1).check()
    page.wait_for_selector("#compare-table td:has-text('kl_reverse')")
    assert page.locator("#compare-table tr").count() == 7  # a header and the six divergences


def test_an_api_error_is_shown_as_a_message(page: "sync_api.Page", url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#footer:has-text('1797 items')")
    page.fill("#query-id", "nope")
    page.click("#search-id")
    page.wait_for_selector("#error:not([hidden])")
    assert "no item with id 'nope'" in page.locator("#error").inner_text()
    page.goto(f"{url}/?id=digits-1&filter=label:3")
    page.wait_for_selector("#error:has-text('filter is not JSON')")
    page.wait_for_selector("#footer:has-text('1797 items')")  # the rest of the page still works
    page.fill("#query-logits", "1, 2, three")
    page.click("#search-logits")
    assert "numbers" in page.locator("#error").inner_text()
    page.fill("#query-logits", "1, 2, 3")  # 3 classes for a 10-class model: the service says so
    page.click("#search-logits")
    page.wait_for_selector("#error:has-text('10')")
    assert "HTTP 422" in page.locator("#error").inner_text()
    assert page.locator("#query-card").is_hidden() and page.locator("#results-section").is_hidden()


def test_the_page_works_with_an_api_key(browser: "sync_api.Browser", default_data_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(default_data_dir, tmp_path / "data")
    keyed = _settings(tmp_path / "data", api_key="page-key")
    with serving(keyed) as base_url:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{base_url}/?id=digits-8")
        page.wait_for_selector("#error:has-text('API key')")
        page.fill("#api-key", "page-key")
        page.dispatch_event("#api-key", "change")
        page.wait_for_selector("#results .result img:visible")
        assert _first_result(page) == "digits-8"
        assert page.evaluate("() => sessionStorage.getItem('logitsearch.apiKey')") == "page-key"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=ARTIFACTS / "with-api-key.png", full_page=True)
        context.close()


def test_the_api_docs_render_offline(page: "sync_api.Page", url: str) -> None:
    page.goto(f"{url}/docs")
    page.wait_for_selector(".swagger-ui .info .title:has-text('logit-search')")
    assert page.locator(".opblock-summary-path", has_text="/v1/search/agreement").count() >= 1


def _mini_index(url: str, name: str, count: int) -> None:
    assert httpx.post(f"{url}/v1/indexes", json={"name": name, "model": "digits-cnn"}).status_code == 201
    items = [
        {"id": f"{name}-{i:02d}", "image": base64.b64encode(digit_png(i)).decode(), "metadata": {"label": i % 10}}
        for i in range(count)
    ]
    assert httpx.post(f"{url}/v1/indexes/{name}/items", json={"items": items}).status_code == 200


def test_the_agreement_panel_lists_both_top_k_as_the_api_does(page: "sync_api.Page", url: str) -> None:
    page.goto(f"{url}/?id=digits-3&metric=kl&ref=js&t=2")
    page.wait_for_selector("#agreement-card:not([hidden]) #metric-list li")
    found = httpx.post(
        f"{url}/v1/search/agreement",
        json={"query": {"id": "digits-3"}, "k": 10, "metric": "kl", "reference": "js", "temperature": 2},
    ).json()
    assert page.locator("#metric-list li a").all_inner_texts() == found["metric_ids"]
    assert page.locator("#reference-list li a").all_inner_texts() == found["reference_ids"]
    assert page.locator("#metric-list li.shared").count() == found["shared"]
    assert page.locator("#agreement-title").inner_text() == "Does kl follow js here?"
    page.select_option("#reference", "ce")  # the panel follows the chosen reference
    page.wait_for_selector("#agreement-title:has-text('follow ce')")
    assert parse_qs(urlparse(page.url).query)["ref"] == ["ce"]


def test_browsing_pages_through_an_index_without_repeats_and_deletes_an_item(page: "sync_api.Page", url: str) -> None:
    _mini_index(url, "shelf", 30)
    page.goto(f"{url}/?view=browse&index=shelf")
    page.wait_for_selector("#browse-grid .result")
    while page.locator("#browse-more").is_visible():
        before = page.locator("#browse-grid .result").count()
        page.click("#browse-more")
        page.wait_for_function("n => document.querySelectorAll('#browse-grid .result').length > n", arg=before)
    listed = [card.get_attribute("data-id") for card in page.locator("#browse-grid .result").all()]
    assert listed == [f"shelf-{i:02d}" for i in range(30)]
    assert page.locator("#facet-label li").count() == 10 and "30 items match" in page.inner_text("#browse-count")
    page.locator("#facet-label button", has_text="3: 3").click()  # a facet filters the grid
    page.wait_for_function("() => document.querySelectorAll('#browse-grid .result').length === 3")
    assert json.loads(page.input_value("#browse-filter")) == {"label": 3}
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("#browse-grid .result", has_text="shelf-03").locator("button.delete").click()
    page.wait_for_function("() => document.querySelectorAll('#browse-grid .result').length === 2")
    assert httpx.get(f"{url}/v1/indexes/shelf/items/shelf-03").status_code == 404


def test_the_map_draws_every_item_and_a_box_selects_them(page: "sync_api.Page", url: str) -> None:
    page.goto(f"{url}/?view=map")
    page.click("#map-form button")
    page.wait_for_selector("#map[data-points]")
    assert page.get_attribute("#map", "data-points") == "1797"
    box = page.locator("#map").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 1, box["y"] + 1)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] - 2, steps=5)  # a drag, as a hand moves
    page.mouse.up()
    assert page.get_attribute("#map-selected", "data-count") == "1797"
    page.click("#map-browse")  # the selection, as a grid
    page.wait_for_selector("#browse-count:has-text('1797 items selected on the map')")
    assert page.locator("#browse-grid .result").count() == 200
    page.go_back()
    page.click("#map-form button")
    page.wait_for_selector("#map[data-points]")
    box = page.locator("#map").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 1, box["y"] + 1)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] - 2, steps=5)
    page.mouse.up()
    page.locator("#map-selected a").first.click()  # one click searches from a selected item
    page.wait_for_selector("#results .result")
    assert parse_qs(urlparse(page.url).query)["view"] == ["search"]


def test_the_analyses_grid_shows_what_the_api_answers(page: "sync_api.Page", url: str) -> None:
    page.goto(f"{url}/?view=analyses")
    page.select_option("#analysis-kind", "uncertain")
    page.fill("#analysis-limit", "6")
    page.click("#analysis-form button")
    page.wait_for_selector("#analysis-note:has-text('6 shown')")
    expected = httpx.post(f"{url}/v1/analyses/uncertain", json={"limit": 6}).json()
    assert [card.get_attribute("data-id") for card in page.locator("#analysis-grid .result").all()] == [
        row["id"] for row in expected["rows"]
    ]


def test_the_index_evaluation_plots_every_metric_against_temperature(page: "sync_api.Page", url: str) -> None:
    page.goto(f"{url}/?view=analyses")
    page.fill("#evaluate-queries", "20")
    page.click("#evaluate-form button")
    page.wait_for_selector("#evaluate-overlap[data-series]", timeout=120_000)
    report = httpx.post(f"{url}/v1/evaluate", json={"num_queries": 20}, timeout=120).json()
    metrics = list(dict.fromkeys(row["metric"] for row in report["ranking"]))
    assert page.get_attribute("#evaluate-overlap", "data-series") == str(len(metrics))
    assert page.locator("#evaluate-legend .legend").all_inner_texts() == metrics


def test_admin_creates_fills_from_a_folder_and_drops_an_index(page: "sync_api.Page", url: str, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    (folder / "7").mkdir(parents=True)
    for i in range(20):
        (folder / "7" / f"{i}.png").write_bytes(digit_png(i))
    page.goto(f"{url}/?view=admin")
    page.wait_for_selector("#index-table tr[data-index=default]")
    page.fill("#create-name", "pictures")
    page.click("#create-form button")
    page.wait_for_selector("#index-table tr[data-index=pictures]")
    page.select_option("#index", "pictures")
    page.set_input_files("#upload-folder", str(folder))
    page.wait_for_selector("#upload-note:has-text('20 of 20 images added to pictures')")
    assert httpx.get(f"{url}/v1/indexes/pictures").json()["count"] == 20
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("#index-table tr[data-index=pictures] button.delete").click()
    page.wait_for_function("() => !document.querySelector('#index-table tr[data-index=pictures]')")
    assert httpx.get(f"{url}/v1/indexes/pictures").status_code == 404


def test_the_page_is_usable_420_px_wide(browser: "sync_api.Browser", url: str) -> None:
    context = browser.new_context(viewport={"width": 420, "height": 900})
    narrow = context.new_page()
    narrow.goto(f"{url}/?id=digits-7")
    narrow.wait_for_selector("#results .result")
    assert narrow.evaluate("() => document.documentElement.scrollWidth") <= 420
    narrow.keyboard.press("Tab")  # keyboard: the first control takes the focus
    assert narrow.evaluate("() => document.activeElement !== document.body")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    narrow.screenshot(path=ARTIFACTS / "narrow.png", full_page=True)
    context.close()
