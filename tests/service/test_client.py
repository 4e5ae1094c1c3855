"""The Python client in process (`Client(http=TestClient(app))`): every operation, typed results, errors, batching,
retries. Over real HTTP against uvicorn: tests/service/test_client_server.py."""

import inspect
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from scipy.special import log_softmax, softmax
from scipy.stats import spearmanr

from models import array_to_image, load_digit_images
from service.app import create_app
from service.client import (
    ROUTES,
    AsyncClient,
    Client,
    Conflict,
    InvalidRequest,
    NotFound,
    Retry,
    Unavailable,
)
from service.config import Settings
from service.schemas import SearchResponse
from tests.helpers import brute_force, digit_png


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, default_data_dir: Path) -> Iterator[FastAPI]:
    """One started app for the module, on a private copy of the default data dir (max_batch 64)."""
    data_dir = tmp_path_factory.mktemp("client") / "data"
    shutil.copytree(default_data_dir, data_dir)
    settings = Settings(data_dir=data_dir, device="cpu", faiss_gpu="false", num_threads=2, max_batch=64)
    started = create_app(settings)
    with TestClient(started):
        yield started


@pytest.fixture
def client(app: FastAPI) -> Iterator[Client]:
    with Client(http=TestClient(app), seed=0) as c:
        yield c


def _operations() -> set[str]:
    schema = create_app(Settings()).openapi()
    return {f"{method.upper()} {path}" for path, methods in schema["paths"].items() for method in methods}


def _routes() -> set[str]:
    expanded = set()
    for routes in ROUTES.values():
        for route in routes:
            for prefix in ("/v1", "/v1/indexes/{index_name}"):
                expanded.add(route.replace("{index}", prefix))
    return expanded


def test_every_openapi_operation_has_a_method_of_both_clients() -> None:
    operations = _operations()
    assert operations - _routes() == set(), "operations with no client method: add them to service/client"
    assert _routes() - operations == set(), "client methods of routes the service does not have"
    for name in ROUTES:
        sync, aio = getattr(Client, name), getattr(AsyncClient, name)
        assert inspect.signature(sync) == inspect.signature(aio).replace(
            return_annotation=inspect.signature(sync).return_annotation
        )
        assert inspect.iscoroutinefunction(aio) and not inspect.iscoroutinefunction(sync)


def test_service_info_models_and_health(client: Client) -> None:
    assert client.health() == {"status": "ok"} and client.ready() is True
    info = client.info()
    assert info.model.name == "digits-cnn" and info.index.count >= 1797 and info.limits.max_batch == 64
    assert [m.name for m in client.list_models()] == ["digits-cnn"]
    assert "logitsearch_queries_total" in client.metrics()


def test_search_by_image_array_pil_and_path_finds_the_digit(client: Client, tmp_path: Path) -> None:
    pixels = load_digit_images().images[42]
    path = tmp_path / "d.png"
    path.write_bytes(digit_png(42))
    image = array_to_image(pixels)
    for query in (np.asarray(image), image, path, str(path), digit_png(42)):
        hits = client.search_image(query, k=3).results[0]
        assert hits[0].id == "digits-42" and hits[0].distance < 1e-3
    batch = client.search(images=[image, path], k=1)
    assert isinstance(batch, SearchResponse) and [row[0].id for row in batch.results] == ["digits-42"] * 2


def test_search_by_numpy_logits_matches_the_brute_force_oracle(client: Client, rng: np.random.Generator) -> None:
    everything = list(client.iter_items(page_size=500))
    ids = [item.id for item in everything]
    items = np.array([item.logits for item in everything], dtype=np.float32)
    queries = (rng.standard_normal((3, 10)) * 4).astype(np.float32)
    for metric in ("l2", "kl"):
        found = client.search(queries, k=5, metric=metric, temperature=2.0)
        oracle = brute_force(metric, queries, items, temperature=2.0)
        for row, hits in zip(oracle, found.results, strict=True):
            np.testing.assert_allclose([h.distance for h in hits], np.sort(row)[:5], rtol=1e-6, atol=1e-9)
            assert [ids.index(h.id) for h in hits] == list(np.argsort(row, kind="stable")[:5])
    one = client.search(queries[0], k=2, filter={"split": "test"})
    assert len(one.results) == 1 and all(h.metadata["split"] == "test" for h in one.results[0])


def test_upsert_in_batches_stores_float32_exactly(app: FastAPI, rng: np.random.Generator) -> None:
    logits = (rng.standard_normal((150, 10)) * 3).astype(np.float32)
    ids = [f"batch-{i:03d}" for i in range(150)]
    seen: list[int] = []

    def count_items(request: httpx.Request) -> None:
        if request.url.path == "/v1/items" and request.method == "POST":
            body = json.loads(request.content)
            assert set(body) == {"ids", "logits_b64", "shape", "metadata"}  # the columnar, binary form
            seen.append(len(body["ids"]))

    http = TestClient(app)
    http.event_hooks = {"request": [count_items], "response": []}
    with Client(http=http) as client:
        answer = client.upsert(ids, logits, metadata=[{"n": i} for i in range(150)], batch_size=100)
        assert answer.upserted == 150 and seen == [64, 64, 22]  # the server's MAX_BATCH (64) wins over 100
        stored = client.get_item("batch-149")
        assert np.array_equal(np.float32(stored.logits), logits[149]) and stored.metadata == {"n": 149}
        page = client.list_items(0, 5)
        assert page.count == answer.count and [item.id for item in page.items] == [f"digits-{i}" for i in range(5)]
        assert client.delete_item("batch-000").deleted == "batch-000"
        with pytest.raises(NotFound) as missing:
            client.delete_item("batch-000")
        assert missing.value.status == 404 and "batch-000" in missing.value.detail


def test_upsert_checks_columns_before_sending(client: Client) -> None:
    with pytest.raises(ValueError, match="exactly one of logits"):
        client.upsert(["a"])
    with pytest.raises(ValueError, match="1 ids, 2 vectors"):
        client.upsert(["a"], np.zeros((2, 10)))


def test_errors_carry_the_server_detail(client: Client) -> None:
    with pytest.raises(InvalidRequest) as bad_k:
        client.search(ids=["digits-1"], k=0)
    assert bad_k.value.status == 422 and bad_k.value.detail[0]["loc"][-1] == "k"
    with pytest.raises(InvalidRequest, match="10"):
        client.search(np.zeros(3), k=1)  # 3 classes for a 10-class model
    with pytest.raises(NotFound, match="no index named 'nope'"):
        client.search(ids=["digits-1"], index="nope")
    with pytest.raises(NotFound, match="nope"):
        client.get_item("nope")


def test_indexes_divergence_agreement_and_evaluation(client: Client) -> None:
    created = client.create_index("client-test", "digits-cnn")
    assert created.name == "client-test" and created.count == 0
    with pytest.raises(Conflict):
        client.create_index("client-test", "digits-cnn")
    client.upsert(["seven"], images=[digit_png(7)], index="client-test")
    client.upsert(["plain"], np.zeros((1, 10)), index="client-test")
    assert client.get_index("client-test").count == 2 and created.thumbnails is True
    thumbnail = client.thumbnail("seven", index="client-test")
    assert thumbnail.media_type == "image/png" and thumbnail.data == client.thumbnail("digits-7").data
    with pytest.raises(NotFound, match="no thumbnail"):
        client.thumbnail("plain", index="client-test")
    assert "client-test" in [index.name for index in client.list_indexes()]
    assert client.search(ids=["seven"], k=1, index="client-test").results[0][0].id == "seven"
    assert client.drop_index("client-test").deleted == "client-test"

    a, b = np.array([2.0, 0.0, -1.0]), np.array([0.0, 1.0, 0.0])
    values = client.divergence(a, b, temperature=2.0, measures=["ce"]).values["ce"]
    assert values[0] == pytest.approx(-(softmax(a / 2) * log_softmax(b / 2)).sum(), rel=1e-12)

    report = client.evaluate(num_queries=5, temperatures=[1.0], metrics=["l2"], k=5)
    assert [row.metric for row in report.ranking] == ["l2"]


def test_agreement_matches_an_independent_oracle(client: Client, rng: np.random.Generator) -> None:
    everything = list(client.iter_items(page_size=1000))
    ids = [item.id for item in everything]
    items = np.array([item.logits for item in everything], dtype=np.float32)
    query = rng.standard_normal(10) * 2  # far from saturation: no ties among the top CE values
    found = client.agreement(query, k=10, temperature=2.0)
    l2, ce = brute_force("l2", query[None], items)[0], brute_force("ce", query[None], items, 2.0)[0]
    top_l2, top_ce = [ids[i] for i in np.argsort(l2)[:10]], [ids[i] for i in np.argsort(ce)[:10]]
    assert found.metric_ids == top_l2 and found.reference_ids == top_ce
    assert found.shared == len(set(top_l2) & set(top_ce)) and found.overlap == found.shared / 10
    union = [ids.index(i) for i in dict.fromkeys(top_l2 + top_ce)]
    assert found.compared == len(union)
    assert found.spearman == pytest.approx(spearmanr(l2[union], ce[union]).statistic, abs=1e-12)


def test_retries_idempotent_calls_on_503_only() -> None:
    answers = iter([503, 503, 200])
    calls: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        status = next(answers, 503)
        return httpx.Response(status, json={"status": "ok"} if status == 200 else {"detail": "loading"})

    transport = httpx.MockTransport(flaky)
    fast = Retry(attempts=3, delay_s=0.001)
    http = httpx.Client(base_url="http://testserver", transport=transport)
    with Client("http://testserver", http=http, retry=fast, seed=0) as client:
        assert client.health() == {"status": "ok"} and calls == ["GET"] * 3
        calls.clear()
        with pytest.raises(Unavailable, match="loading"):
            client.create_index("x", "digits-cnn")  # not idempotent: one try
        assert calls == ["POST"]
