"""Indexes in PostgreSQL + pgvector over real HTTP: created per request, same answers as FAISS, 503 when down."""

import threading
import time
import uuid
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
import torch
from fastapi.testclient import TestClient
from pydantic import SecretStr

from models import TrainConfig, train_classifier
from service.app import create_app
from service.cli import main
from service.config import Settings
from tests.postgres import PostgresServer
from tests.servers import serving


def _unique(prefix: str) -> str:
    """An index name no other test uses: they share one PostgreSQL server."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pg_settings(settings: Settings, pg_server: PostgresServer) -> Settings:
    return settings.model_copy(update={"pg_url": SecretStr(pg_server.url), "pg_connect_timeout_s": 2.0})


def _items(rng: np.random.Generator, n: int) -> list[dict[str, object]]:
    vectors = rng.standard_normal((n, 10)) * 4
    return [{"id": f"p{i}", "logits": v.tolist(), "metadata": {"label": i % 3}} for i, v in enumerate(vectors)]


def _assert_same_answers(a: dict[str, Any], b: dict[str, Any]) -> None:
    """The same ids, order and metadata; distances equal to float64 rounding (each store may take another
    exact path: a re-rank of candidates, or a scan of every match)."""
    assert (a["metric"], a["temperature"]) == (b["metric"], b["temperature"])
    for row_a, row_b in zip(a["results"], b["results"], strict=True):
        assert [(n["id"], n["metadata"]) for n in row_a] == [(n["id"], n["metadata"]) for n in row_b]
        np.testing.assert_allclose([n["distance"] for n in row_a], [n["distance"] for n in row_b], rtol=1e-13)


def test_pgvector_index_answers_like_faiss_and_survives_restart(
    pg_settings: Settings, rng: np.random.Generator
) -> None:
    pg = _unique("pg")
    items = _items(rng, 60)
    with serving(pg_settings) as url, httpx.Client(base_url=url) as http:
        created = http.post(
            "/v1/indexes", json={"name": pg, "model": "digits-cnn", "store": "pgvector", "temperatures": [1.0, 0.5]}
        )
        assert created.status_code == 201, created.text
        assert created.json() | {"created_at": None} == {
            "name": pg, "model": "digits-cnn", "store": "pgvector", "index_type": "flat", "temperatures": [1.0, 0.5],
            "created_at": None, "status": "ready", "reason": None, "count": 0, "dim": 10, "device": "cpu",
            "recall_at_10": None, "approximate": None, "thumbnails": True, "shards": None, "shard_standbys": None, "calibration": None,
        }  # fmt: skip
        assert http.post("/v1/indexes", json={"name": "fs", "model": "digits-cnn"}).status_code == 201
        for name in (pg, "fs"):
            assert http.post(f"/v1/indexes/{name}/items", json={"items": items}).json() == {
                "upserted": 60,
                "count": 60,
            }
        queries = {"queries": [{"logits": item["logits"]} for item in _items(rng, 3)], "k": 8}
        for metric, temperature, condition in (("l2", 1.0, None), ("ce", 0.5, {"label": 2}), ("js", 1.0, None)):
            body = queries | {"metric": metric, "temperature": temperature, "filter": condition}
            in_pg, in_faiss = (http.post(f"/v1/indexes/{name}/search", json=body) for name in (pg, "fs"))
            assert in_pg.status_code == 200, in_pg.text
            _assert_same_answers(in_pg.json(), in_faiss.json())
        refused = http.post(f"/v1/indexes/{pg}/search", json=queries | {"metric": "kl", "temperature": 2.0})
        assert refused.status_code == 422 and "temperature 1.0, 0.5 only, not 2.0" in refused.json()["detail"]
        assert http.delete(f"/v1/indexes/{pg}/items/p0").status_code == 200
        assert http.get(f"/v1/indexes/{pg}/items/p0").status_code == 404
    with serving(pg_settings) as url, httpx.Client(base_url=url) as http:
        assert http.get(f"/v1/indexes/{pg}").json()["count"] == 59
        assert http.get(f"/v1/indexes/{pg}/items/p1").json()["metadata"] == {"label": 1}
        assert http.delete(f"/v1/indexes/{pg}").json() == {"deleted": pg}
        again = http.post("/v1/indexes", json={"name": pg, "model": "digits-cnn", "store": "pgvector"})
        assert again.status_code == 201 and again.json()["count"] == 0 and again.json()["temperatures"] == [1.0]
        assert http.delete(f"/v1/indexes/{pg}").status_code == 200


def test_pgvector_without_pg_url_is_refused(client: TestClient) -> None:
    response = client.post("/v1/indexes", json={"name": "pg", "model": "digits-cnn", "store": "pgvector"})
    assert response.status_code == 422 and "LOGITSEARCH_PG_URL" in response.json()["detail"]
    ivf = client.post(
        "/v1/indexes", json={"name": "h", "model": "digits-cnn", "store": "pgvector", "index_type": "ivf"}
    )
    assert ivf.status_code == 422 and "not available in store 'pgvector'" in ivf.json()["detail"]


def test_database_down_is_503_with_the_reason(pg_settings: Settings, rng: np.random.Generator) -> None:
    pg = _unique("down")
    with TestClient(create_app(pg_settings)) as client:
        assert (
            client.post("/v1/indexes", json={"name": pg, "model": "digits-cnn", "store": "pgvector"}).status_code == 201
        )
        client.post(f"/v1/indexes/{pg}/items", json={"items": _items(rng, 3)})
    nowhere = pg_settings.model_copy(
        update={"pg_url": SecretStr("postgresql://postgres@127.0.0.1:9/postgres"), "pg_connect_timeout_s": 0.5}
    )
    with TestClient(create_app(nowhere)) as client:
        listed = client.get(f"/v1/indexes/{pg}").json()
        assert listed["status"] == "unavailable" and "PostgreSQL is unreachable" in listed["reason"]
        search = client.post(f"/v1/indexes/{pg}/search", json={"queries": [{"logits": [0.0] * 10}], "k": 1})
        assert search.status_code == 503 and "127.0.0.1:9" in search.json()["detail"]
        assert client.get("/v1/search").status_code in (405, 404)  # the default FAISS index is unaffected
        assert client.get("/v1/indexes/default").json()["status"] == "ready"
    with TestClient(create_app(pg_settings)) as client:
        assert client.get(f"/v1/indexes/{pg}").json()["count"] == 3
        assert client.delete(f"/v1/indexes/{pg}").status_code == 200


def test_cli_index_into_pgvector(pg_settings: Settings, pg_server: PostgresServer) -> None:
    pgd = _unique("cli")
    flags = ["--data-dir", str(pg_settings.data_dir), "--device", "cpu", "--faiss-gpu", "false"]
    command = [
        "index",
        "--index",
        pgd,
        "--store",
        "pgvector",
        "--temperatures",
        "1,0.25",
        "--index-type",
        "hnsw",
        "--pg-url",
        pg_server.url,
    ]
    assert main([*command, *flags]) == 0
    with TestClient(create_app(pg_settings)) as client:
        info = client.get(f"/v1/indexes/{pgd}").json()
        assert (info["store"], info["count"], info["temperatures"]) == ("pgvector", 1797, [1.0, 0.25])
        assert info["index_type"] == "hnsw" and set(info["recall_at_10"]) == {"l2", "ce"}
        assert all(0.5 <= value <= 1.0 for value in info["recall_at_10"].values()), info["recall_at_10"]
        assert client.get("/v1/indexes").json()["indexes"][-1]["recall_at_10"] is None  # measured on demand only
        thumbnail = client.get(f"/v1/indexes/{pgd}/items/digits-7/thumbnail")  # kept in PostgreSQL too
        assert thumbnail.status_code == 200 and thumbnail.content == client.get("/v1/items/digits-7/thumbnail").content
        hit = client.post(
            f"/v1/indexes/{pgd}/search",
            json={"queries": [{"id": "digits-7"}], "k": 1, "metric": "kl", "temperature": 0.25},
        )
        assert hit.json()["results"][0][0]["id"] == "digits-7"
        # Undeclared temperatures: inside the range the grid graph serves them, outside (and on request) exactly.
        body = {"queries": [{"id": "digits-7"}], "k": 5, "metric": "ce", "temperature": 0.5}
        answers = [
            client.post(f"/v1/indexes/{pgd}/search", json=body | extra).json()
            for extra in ({"target_recall": 0.5}, {"exact": True}, {"temperature": 2.0})
        ]
        assert answers[0]["exact"] is False and answers[0]["recall_at_10"] >= 0.5, answers[0]
        for answer in answers[1:]:
            assert answer["exact"] is True and answer["results"][0][0]["id"] == "digits-7", answer
        assert client.delete(f"/v1/indexes/{pgd}").status_code == 200


def test_an_index_whose_model_was_retrained_is_503_with_the_reason(
    pg_settings: Settings, rng: np.random.Generator
) -> None:
    pg = _unique("retrained")
    with TestClient(create_app(pg_settings)) as client:
        assert (
            client.post("/v1/indexes", json={"name": pg, "model": "digits-cnn", "store": "pgvector"}).status_code == 201
        )
        assert client.post(f"/v1/indexes/{pg}/items", json={"items": _items(rng, 3)}).status_code == 200
    # Retrained under the same name: the logits in PostgreSQL are another model's now.
    train_classifier(
        TrainConfig(name="digits-cnn", epochs=1, seed=5), pg_settings.models_dir, device=torch.device("cpu")
    )
    with TestClient(create_app(pg_settings)) as client:
        search = client.post(f"/v1/indexes/{pg}/search", json={"queries": [{"logits": [0.0] * 10}], "k": 1})
        assert search.status_code == 503 and "sha256" in search.json()["detail"], search.text
        assert pg in search.json()["detail"] and "create it again" in search.json()["detail"]
        listed = client.get(f"/v1/indexes/{pg}").json()
        assert listed["status"] == "unavailable" and "sha256" in listed["reason"]
        assert client.delete(f"/v1/indexes/{pg}").status_code == 200  # how the user starts over
        assert (
            client.post("/v1/indexes", json={"name": pg, "model": "digits-cnn", "store": "pgvector"}).status_code == 201
        )
        assert client.delete(f"/v1/indexes/{pg}").status_code == 200


def test_a_create_waiting_on_a_locked_database_holds_up_no_other_request(
    pg_settings: Settings, pg_server: PostgresServer
) -> None:
    """The registry table locked in PostgreSQL for as long as the test likes: the pgvector create waits on it, and
    meanwhile the FAISS index, `/health` and the index's description answer (a create held the catalog lock
    across the database call before: 8 s of lock, 8 s for every request)."""
    pg = _unique("locked")
    with serving(pg_settings) as url, httpx.Client(base_url=url, timeout=60) as http:
        assert http.post("/v1/search", json={"queries": [{"id": "digits-7"}], "k": 3}).status_code == 200
        with psycopg.connect(pg_server.url) as locker:
            locker.execute("CREATE SCHEMA IF NOT EXISTS logitsearch")
            locker.execute(
                "CREATE TABLE IF NOT EXISTS logitsearch.indexes (name text PRIMARY KEY, model text NOT NULL, "
                "model_sha256 text NOT NULL, dim integer NOT NULL, temperatures float8[] NOT NULL, "
                "index_type text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), relation text)"
            )
            locker.commit()
            locker.execute("LOCK TABLE logitsearch.indexes IN ACCESS EXCLUSIVE MODE")
            answers: list[httpx.Response] = []
            creating = threading.Thread(
                target=lambda: answers.append(
                    http.post("/v1/indexes", json={"name": pg, "model": "digits-cnn", "store": "pgvector"})
                )
            )
            creating.start()
            time.sleep(1.0)  # the create is now waiting on the lock
            assert creating.is_alive()
            # Had they to wait for the create, they would wait for the lock, which is held until they all answered.
            for _ in range(10):
                assert (
                    http.post("/v1/search", json={"queries": [{"id": "digits-7"}], "k": 3}, timeout=10).status_code
                    == 200
                )
                assert http.get("/health", timeout=10).status_code == 200
                assert http.get("/v1/indexes/default", timeout=10).status_code == 200
            assert creating.is_alive()
            locker.rollback()  # the lock goes; the create finishes
        creating.join(timeout=30)
        assert answers and answers[0].status_code == 201, answers
        assert http.delete(f"/v1/indexes/{pg}").status_code == 200
