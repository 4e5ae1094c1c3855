"""Many indexes in one service, each bound to its model: over real HTTP, across restarts, under races."""

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from models import TrainConfig, train_classifier
from service.app import create_app
from service.cli import main
from service.config import Settings
from tests.helpers import b64, digit_png
from tests.servers import serving

MLP = "digits-mlp"


@pytest.fixture(scope="session")
def two_models_data_dir(tmp_path_factory: pytest.TempPathFactory, default_data_dir: Path) -> Path:
    """The default data dir plus a second model, an MLP trained on the same digits."""
    data_dir = tmp_path_factory.mktemp("two-models")
    shutil.copytree(default_data_dir, data_dir, dirs_exist_ok=True)
    train_classifier(TrainConfig(name=MLP, arch="mlp", epochs=3), data_dir / "models", device=torch.device("cpu"))
    return data_dir


@pytest.fixture
def settings2(tmp_path: Path, two_models_data_dir: Path) -> Settings:
    data_dir = tmp_path / "data"
    shutil.copytree(two_models_data_dir, data_dir)
    return Settings(data_dir=data_dir, device="cpu", faiss_gpu="false", num_threads=2, max_batch=64)


def _embed(http: httpx.Client, model: str, images: list[bytes]) -> np.ndarray:
    response = http.post(f"/v1/models/{model}/embed", json={"images": [b64(i) for i in images]})
    assert response.status_code == 200, response.text
    return np.array(response.json()["logits"])


def _names(http: httpx.Client) -> dict[str, dict[str, Any]]:
    return {index["name"]: index for index in http.get("/v1/indexes").json()["indexes"]}


def test_three_indexes_two_models_over_http(settings2: Settings) -> None:
    pngs = [digit_png(i) for i in range(20)]
    with serving(settings2) as url, httpx.Client(base_url=url, timeout=30) as http:
        models = {m["name"]: m for m in http.get("/v1/models").json()["models"]}
        assert set(models) == {"digits-cnn", MLP}
        assert models[MLP]["arch"] == "mlp" and models[MLP]["num_classes"] == 10 and len(models[MLP]["sha256"]) == 64
        assert models[MLP]["training"]["epochs"] == 3 and models[MLP]["loaded"] is False

        created = http.post("/v1/indexes", json={"name": "mlp-digits", "model": MLP})
        assert created.status_code == 201, created.text
        assert created.json() | {"created_at": None} == {
            "name": "mlp-digits", "model": MLP, "store": "faiss", "index_type": "flat", "temperatures": None,
            "created_at": None, "status": "ready", "reason": None, "count": 0, "dim": 10, "device": "cpu",
            "recall_at_10": None, "approximate": None, "thumbnails": True, "shards": None, "shard_standbys": None, "calibration": None,
        }  # fmt: skip
        assert http.post("/v1/indexes", json={"name": "cnn-extra", "model": "digits-cnn"}).status_code == 201
        listed = _names(http)
        assert list(listed) == ["cnn-extra", "default", "mlp-digits"]
        assert [listed[n]["model"] for n in listed] == ["digits-cnn", "digits-cnn", MLP]
        assert listed["default"]["count"] == 1797

        # Images are embedded with the model of the index they go into.
        for name in ("mlp-digits", "cnn-extra"):
            items = [{"id": f"d-{i}", "image": b64(png), "metadata": {"in": name}} for i, png in enumerate(pngs)]
            response = http.post(f"/v1/indexes/{name}/items", json={"items": items})
            assert response.json() == {"upserted": 20, "count": 20}
        by_mlp, by_cnn = _embed(http, MLP, pngs[7:8])[0], _embed(http, "digits-cnn", pngs[7:8])[0]
        assert not np.allclose(by_mlp, by_cnn, atol=1e-2)
        stored_mlp = http.get("/v1/indexes/mlp-digits/items/d-7").json()
        stored_cnn = http.get("/v1/indexes/cnn-extra/items/d-7").json()
        np.testing.assert_allclose(stored_mlp["logits"], by_mlp, atol=1e-5)
        np.testing.assert_allclose(stored_cnn["logits"], by_cnn, atol=1e-5)
        assert (stored_mlp["metadata"], stored_cnn["metadata"]) == ({"in": "mlp-digits"}, {"in": "cnn-extra"})

        # The same id in two indexes stays apart; the default index and its old routes are untouched.
        assert http.delete("/v1/indexes/cnn-extra/items/d-7").status_code == 200
        assert http.get("/v1/indexes/cnn-extra/items/d-7").status_code == 404
        assert http.get("/v1/indexes/mlp-digits/items/d-7").json() == stored_mlp
        assert http.get("/v1/items/d-7").status_code == 404 and http.get("/v1/info").json()["index"]["count"] == 1797

        # Searching by image uses the index's model: the MLP's own logits of digit 7 are at distance 0.
        hits = http.post(
            "/v1/indexes/mlp-digits/search", json={"queries": [{"image": b64(pngs[7])}, {"id": "d-3"}], "k": 3}
        ).json()["results"]
        assert hits[0][0]["id"] == "d-7" and hits[0][0]["distance"] < 1e-3
        assert hits[1][0] == {"id": "d-3", "distance": 0.0, "metadata": {"in": "mlp-digits"}}
        shortcut = http.post("/v1/indexes/mlp-digits/search/image", files={"file": pngs[7]}, data={"k": "1"}).json()
        assert shortcut["results"][0][0]["id"] == "d-7" and shortcut["results"][0][0]["distance"] < 1e-3
        page = http.get("/v1/indexes/mlp-digits/items", params={"limit": 5}).json()
        assert page["count"] == 20 and len(page["items"]) == 5
        report = http.post("/v1/indexes/mlp-digits/evaluate", json={"num_queries": 5, "temperatures": [1.0]}).json()
        assert report["config"]["model"]["name"] == MLP and report["config"]["index"]["count"] == 20
        assert 'logitsearch_queries_total{index="mlp-digits",metric="l2"} 3.0' in http.get("/metrics").text

        assert http.delete("/v1/indexes/mlp-digits").json() == {"deleted": "mlp-digits"}
        assert http.get("/v1/indexes/mlp-digits").status_code == 404
        assert http.post("/v1/indexes/mlp-digits/search", json={"queries": [{"id": "d-3"}]}).status_code == 404
        assert not (settings2.indexes_dir / "mlp-digits").exists()

    with serving(settings2) as url, httpx.Client(base_url=url, timeout=30) as http:
        listed = _names(http)
        assert list(listed) == ["cnn-extra", "default"]  # the drop is final
        assert listed["cnn-extra"]["count"] == 19 and listed["default"]["count"] == 1797
        assert http.get("/v1/indexes/cnn-extra/items/d-8").json() == {
            "id": "d-8", "logits": http.get("/v1/indexes/cnn-extra/items/d-8").json()["logits"],
            "metadata": {"in": "cnn-extra"},
        }  # fmt: skip
        hits = http.post("/v1/indexes/cnn-extra/search", json={"queries": [{"image": b64(pngs[9])}], "k": 1}).json()
        assert hits["results"][0][0]["id"] == "d-9" and hits["results"][0][0]["distance"] < 1e-3
        recreated = http.post("/v1/indexes", json={"name": "mlp-digits", "model": MLP}).json()
        assert recreated["count"] == 0  # nothing of the dropped index comes back under its name


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"name": "default", "model": "digits-cnn"}, 409, "exists"),
        ({"name": "new", "model": "no-such-model"}, 404, "no model 'no-such-model'"),
        ({"name": "Photos", "model": "digits-cnn"}, 422, "lowercase"),
        ({"name": "-photos", "model": "digits-cnn"}, 422, "starting with a letter or digit"),
        ({"name": "a" * 64, "model": "digits-cnn"}, 422, "1-63"),
        ({"name": "a/b", "model": "digits-cnn"}, 422, "invalid index name"),
        ({"name": "pg", "model": "digits-cnn", "store": "pgvector"}, 422, "LOGITSEARCH_PG_URL"),
        ({"name": "q", "model": "digits-cnn", "store": "qdrant"}, 422, "choose one of faiss, pgvector"),
        ({"name": "annoy", "model": "digits-cnn", "index_type": "annoy"}, 422, "choose one of flat, hnsw, ivf"),
        (
            {"name": "t", "model": "digits-cnn", "temperatures": [1.0]},
            422,
            "a flat faiss index answers every temperature",
        ),
    ],
)
def test_create_refuses_clearly(client: TestClient, body: dict[str, str], status: int, message: str) -> None:
    response = client.post("/v1/indexes", json=body)
    assert response.status_code == status and message in response.json()["detail"]
    assert [index["name"] for index in client.get("/v1/indexes").json()["indexes"]] == ["default"]


def test_unknown_index_routes_are_404_and_default_cannot_be_dropped(client: TestClient) -> None:
    for method, path in [
        ("GET", "/v1/indexes/nope"),
        ("DELETE", "/v1/indexes/nope"),
        ("GET", "/v1/indexes/nope/items"),
        ("GET", "/v1/indexes/nope/items/digits-1"),
        ("POST", "/v1/indexes/nope/search"),
        ("POST", "/v1/models/nope/embed"),
    ]:
        body = {"queries": [{"id": "digits-1"}]} if path.endswith("search") else None
        body = {"images": [b64(digit_png(1))]} if path.endswith("embed") else body
        response = client.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert "nope" in response.json()["detail"]
    response = client.delete("/v1/indexes/default")
    assert response.status_code == 409 and "default index" in response.json()["detail"]
    assert client.get("/v1/indexes/default").json()["count"] == 1797


def test_index_writes_need_the_key(settings: Settings) -> None:
    keyed = Settings(**(settings.model_dump() | {"api_key": "k3y"}))
    with TestClient(create_app(keyed)) as client:
        assert client.post("/v1/indexes", json={"name": "x", "model": "digits-cnn"}).status_code == 401
        assert client.get("/v1/indexes").status_code == 401
        headers = {"X-API-Key": "k3y"}
        assert client.get("/v1/indexes", headers=headers).status_code == 200
        assert client.post("/v1/indexes", json={"name": "x", "model": "digits-cnn"}, headers=headers).status_code == 201
        assert client.delete("/v1/indexes/x").status_code == 401
        assert client.delete("/v1/indexes/x", headers=headers).status_code == 200


def test_an_index_whose_model_changed_is_unavailable_not_fatal(settings2: Settings) -> None:
    with TestClient(create_app(settings2)) as client:
        assert client.post("/v1/indexes", json={"name": "mlp-digits", "model": MLP}).status_code == 201
        items = [{"id": "seven", "image": b64(digit_png(7))}]
        assert client.post("/v1/indexes/mlp-digits/items", json={"items": items}).status_code == 200
    # Retrained under the same name: the stored logits are another model's now.
    train_classifier(
        TrainConfig(name=MLP, arch="mlp", epochs=1, seed=5), settings2.models_dir, device=torch.device("cpu")
    )
    with TestClient(create_app(settings2)) as client:
        assert client.get("/ready").status_code == 200
        listed = _names(client)
        assert listed["mlp-digits"]["status"] == "unavailable" and listed["mlp-digits"]["count"] is None
        assert "sha256" in listed["mlp-digits"]["reason"] and listed["default"]["status"] == "ready"
        response = client.post("/v1/indexes/mlp-digits/search", json={"queries": [{"id": "seven"}]})
        assert response.status_code == 503 and "mlp-digits" in response.json()["detail"]
        assert client.post("/v1/search", json={"queries": [{"id": "digits-7"}], "k": 1}).status_code == 200
        # Dropping it is how the user starts over.
        assert client.delete("/v1/indexes/mlp-digits").status_code == 200
        assert client.post("/v1/indexes", json={"name": "mlp-digits", "model": MLP}).status_code == 201


def test_default_index_of_another_model_than_the_setting_is_unavailable(settings2: Settings) -> None:
    mismatched = Settings(**(settings2.model_dump() | {"model": MLP}))
    with TestClient(create_app(mismatched)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503 and "LOGITSEARCH_MODEL" in ready.json()["reason"]
        response = client.post("/v1/search", json={"queries": [{"id": "digits-7"}]})
        assert response.status_code == 503 and "digits-cnn" in response.json()["detail"]
        assert client.post("/v1/indexes", json={"name": "other", "model": MLP}).status_code == 201
        assert client.get("/v1/indexes/other").json()["status"] == "ready"


def test_pre_catalog_index_and_crash_leftovers(settings: Settings) -> None:
    (settings.index_dir / "index.json").unlink()  # as indexes written before the catalog are
    for leftover in (".creating-half-0a1b", ".dropped-gone-2c3d"):
        (settings.indexes_dir / leftover).mkdir()
        (settings.indexes_dir / leftover / "manifest.json").write_text("{}")
    with TestClient(create_app(settings)) as client:
        assert [(i["name"], i["model"], i["count"]) for i in client.get("/v1/indexes").json()["indexes"]] == [
            ("default", "digits-cnn", 1797)
        ]
    assert sorted(p.name for p in settings.indexes_dir.iterdir()) == ["default"]


def test_concurrent_create_and_drop_of_one_name_have_one_winner(settings: Settings) -> None:
    with serving(settings) as url:

        def race(method: str, path: str, body: dict[str, str] | None) -> list[int]:
            barrier, codes = threading.Barrier(8), []

            def one() -> None:
                with httpx.Client(base_url=url, timeout=30) as http:
                    barrier.wait()
                    codes.append(http.request(method, path, json=body).status_code)

            threads = [threading.Thread(target=one) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return sorted(codes)

        for _ in range(3):
            assert race("POST", "/v1/indexes", {"name": "race", "model": "digits-cnn"}) == [201] + [409] * 7
            assert race("DELETE", "/v1/indexes/race", None) == [200] + [404] * 7

        # Writes and searches racing a drop: each one is answered (200) or finds the index gone (404).
        assert httpx.post(f"{url}/v1/indexes", json={"name": "race", "model": "digits-cnn"}).status_code == 201
        codes: list[int] = []

        def busy(n: int) -> None:
            with httpx.Client(base_url=url, timeout=30) as http:
                for i in range(40):
                    item = {"id": f"{n}-{i}", "logits": [float(i)] * 10}
                    codes.append(http.post("/v1/indexes/race/items", json={"items": [item]}).status_code)
                    search = {"queries": [{"logits": [0.0] * 10}], "k": 5}
                    codes.append(http.post("/v1/indexes/race/search", json=search).status_code)

        workers = [threading.Thread(target=busy, args=(n,)) for n in range(4)]
        for worker in workers:
            worker.start()
        while len(codes) < 20:
            time.sleep(0.01)
        assert httpx.delete(f"{url}/v1/indexes/race").status_code == 200
        for worker in workers:
            worker.join()
        assert set(codes) == {200, 404} and codes[-1] == 404
        assert [i["name"] for i in httpx.get(f"{url}/v1/indexes").json()["indexes"]] == ["default"]
    assert sorted(p.name for p in settings.indexes_dir.iterdir()) == ["default"]


def test_an_index_created_on_disk_after_the_start_is_served_without_a_restart(
    settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "images"
    (folder / "7").mkdir(parents=True)
    (folder / "7" / "a.png").write_bytes(digit_png(7))
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/indexes/late/search", json={"queries": [{"id": "7/a.png"}]}).status_code == 404
        assert main(["index", "--images", str(folder), "--index", "late", "--data-dir", str(settings.data_dir)]) == 0
        assert "late" in [i["name"] for i in client.get("/v1/indexes").json()["indexes"]]
        hits = client.post("/v1/indexes/late/search", json={"queries": [{"id": "7/a.png"}]}).json()["results"]
        assert hits[0][0]["id"] == "7/a.png"
        assert client.delete("/v1/indexes/late").status_code == 200  # the service owns it now
    assert not (settings.indexes_dir / "late").exists()


def test_cli_index_binds_the_model_lists_and_searches(
    settings2: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "images"
    for i in range(4):
        (folder / str(i)).mkdir(parents=True)
        (folder / str(i) / "a.png").write_bytes(digit_png(i))
    flags = ["--data-dir", str(settings2.data_dir), "--device", "cpu", "--faiss-gpu", "false"]
    assert main(["index", "--images", str(folder), "--index", "pets", "--model", MLP, *flags]) == 0
    assert main(["index", "--images", str(folder), "--index", "pets", "--model", "digits-cnn", *flags]) == 2
    assert main(["index", "--images", str(folder), "--index", "pets", *flags]) == 0  # extends, same model
    assert main(["indexes", "list", *flags[:2]]) == 0
    table = [line.split()[:5] for line in capsys.readouterr().out.splitlines()]
    assert table == [
        ["name", "model", "store", "count", "dim"],
        ["default", "digits-cnn", "faiss", "1797", "10"],
        ["pets", MLP, "faiss", "4", "10"],
    ]
    with serving(settings2) as url:
        assert main(["search", "--image", str(folder / "2" / "a.png"), "--index", "pets", "-k", "1", "--url", url]) == 0
        assert capsys.readouterr().out.splitlines()[1].split()[:3] == ["1", "0.0000", "2/a.png"]
        assert main(["search", "--id", "2/a.png", "--index", "nope", "--url", url]) == 2
    assert (
        main(["index", "--images", str(folder), "--index", "pets", "--model", "digits-cnn", "--rebuild", *flags]) == 0
    )
    with TestClient(create_app(settings2)) as client:
        assert client.get("/v1/indexes/pets").json() | {"created_at": None} == {
            "name": "pets", "model": "digits-cnn", "store": "faiss", "index_type": "flat", "temperatures": None,
            "created_at": None, "thumbnails": True,
            "status": "ready", "reason": None, "count": 4, "dim": 10, "device": "cpu", "recall_at_10": None, "approximate": None, "shards": None, "shard_standbys": None, "calibration": None,
        }  # fmt: skip
        thumbnail = client.get("/v1/indexes/pets/items/2/a.png/thumbnail")  # `index --images` keeps them
        assert thumbnail.status_code == 200 and thumbnail.content == client.get("/v1/items/digits-2/thumbnail").content
