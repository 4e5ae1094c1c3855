"""Concurrency and crash safety over real HTTP: what was acknowledged is what is stored, whatever happens."""

import random
import signal
import threading
import time
from typing import Any

import httpx
import numpy as np
import pytest

from service.config import Settings
from tests.servers import free_port, serving, start_serve_process

DIM = 10


def _logits(rng: random.Random) -> list[float]:
    # Values exactly representable in float32, so "exact logits" can be compared with ==.
    return [float(np.float32(rng.gauss(0, 4))) for _ in range(DIM)]


def _all_items(client: httpx.Client) -> dict[str, tuple[list[float], dict[str, Any]]]:
    items: dict[str, tuple[list[float], dict[str, Any]]] = {}
    while True:
        page = client.get("/v1/items", params={"offset": len(items), "limit": 1000}).json()
        items.update({item["id"]: (item["logits"], item["metadata"]) for item in page["items"]})
        if not page["items"]:
            return items


def _writer(url: str, name: str, seconds: float, acknowledged: list[tuple[str, Any]], errors: list[str]) -> None:
    """Upserts and deletes on its own ids, recording each acknowledged write in order."""
    rng = random.Random(name)
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=30) as client:
        while time.monotonic() < deadline:
            item_id = f"{name}-{rng.randrange(12)}"
            if rng.random() < 0.3:
                response = client.delete(f"/v1/items/{item_id}")
                if response.status_code == 200:
                    acknowledged.append((item_id, None))
                elif response.status_code != 404:
                    errors.append(f"DELETE {response.status_code} {response.text}")
                continue
            value = (_logits(rng), {"writer": name, "n": len(acknowledged)})
            response = client.post(
                "/v1/items", json={"items": [{"id": item_id, "logits": value[0], "metadata": value[1]}]}
            )
            if response.status_code == 200:
                acknowledged.append((item_id, value))
            else:
                errors.append(f"POST {response.status_code} {response.text}")


def _reader(url: str, seconds: float, seen: set[str], errors: list[str]) -> None:
    rng = random.Random(1)
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=30) as client:
        while time.monotonic() < deadline:
            body = {"queries": [{"logits": _logits(rng)}], "k": 20, "metric": rng.choice(["l2", "kl", "js"])}
            response = client.post("/v1/search", json=body)
            if response.status_code != 200:
                errors.append(f"search {response.status_code} {response.text}")
                continue
            seen.update(hit["id"] for hit in response.json()["results"][0])


def test_concurrent_writers_and_readers_agree_with_a_sequential_replay(settings: Settings) -> None:
    writers = {f"w{i}": [] for i in range(2)}  # type: dict[str, list[tuple[str, Any]]]
    seen: set[str] = set()
    errors: list[str] = []
    with serving(settings) as url:
        with httpx.Client(base_url=url) as client:
            before = _all_items(client)
        threads = [
            threading.Thread(target=_writer, args=(url, name, 4.0, log, errors)) for name, log in writers.items()
        ]
        threads += [threading.Thread(target=_reader, args=(url, 4.0, seen, errors)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with httpx.Client(base_url=url) as client:
            after = _all_items(client)
    assert errors == []
    expected = dict(before)
    for log in writers.values():
        for item_id, value in log:  # each writer owns its ids, so its own order is the order of record
            if value is None:
                expected.pop(item_id, None)
            else:
                expected[item_id] = value
    assert after == expected
    assert sum(len(log) for log in writers.values()) > 20
    ever_stored = set(before) | {item_id for log in writers.values() for item_id, _ in log}
    assert seen and seen <= ever_stored


# Each cycle is a server start (a few seconds on 2 cores): two kills in the default run, ten in the slow sweep.
@pytest.mark.parametrize("cycles", [2, pytest.param(10, marks=pytest.mark.slow)])
def test_sigkill_never_loses_an_acknowledged_write(settings: Settings, cycles: int) -> None:
    rng = random.Random(7)
    acknowledged: dict[str, tuple[list[float], dict[str, Any]]] = {}
    deleted: set[str] = set()
    port = free_port()
    for cycle in range(cycles):
        process = start_serve_process(settings.data_dir, port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            stored = _all_items(client)
            for item_id, value in acknowledged.items():
                assert stored.get(item_id) == value, f"cycle {cycle}: {item_id} lost or changed"
            assert not deleted & set(stored), f"cycle {cycle}: a deleted item came back"
            killer = threading.Timer(rng.uniform(0.2, 1.2), process.send_signal, args=(signal.SIGKILL,))
            killer.start()
            victim = None
            try:
                for n in range(10_000):
                    items = [
                        {"id": f"c{cycle}-{n}-{j}", "logits": _logits(rng), "metadata": {"cycle": cycle}}
                        for j in range(5)
                    ]
                    response = client.post("/v1/items", json={"items": items})
                    assert response.status_code == 200
                    acknowledged.update({i["id"]: (i["logits"], i["metadata"]) for i in items})
                    if n % 7 == 3:
                        victim = f"c{cycle}-{n - 1}-0"
                        assert client.delete(f"/v1/items/{victim}").status_code == 200
                        acknowledged.pop(victim)
                        deleted.add(victim)
                        victim = None
            except httpx.TransportError:
                # Killed mid-request: that write was not acknowledged, so it may or may not have been applied.
                # An unacknowledged delete leaves its item in doubt: present with its value, or gone.
                if victim is not None:
                    acknowledged.pop(victim)
            killer.join()
        process.wait(timeout=30)
    process = start_serve_process(settings.data_dir, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            stored = _all_items(client)
        assert all(stored.get(item_id) == value for item_id, value in acknowledged.items())
        assert len(acknowledged) > 50 and not deleted & set(stored)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("protect_reads", [False, True])
def test_protect_reads_requires_the_key_for_reads(settings: Settings, protect_reads: bool) -> None:
    from fastapi.testclient import TestClient

    from service.app import create_app

    keyed = Settings(**(settings.model_dump() | {"api_key": "k3y", "protect_reads": protect_reads}))
    with TestClient(create_app(keyed)) as client:
        expected = 401 if protect_reads else 200
        assert client.get("/v1/items/digits-1").status_code == expected
        assert client.post("/v1/search", json={"queries": [{"id": "digits-1"}]}).status_code == expected
        assert client.get("/v1/items/digits-1", headers={"X-API-Key": "k3y"}).status_code == 200
        assert client.get("/health").status_code == 200  # liveness stays open for orchestrators


def test_max_indexes_answers_507_and_a_drop_makes_room(settings: Settings) -> None:
    limited = settings.model_copy(update={"max_indexes": 3})
    with serving(limited) as url, httpx.Client(base_url=url, timeout=30) as http:
        for name in ("a", "b"):  # the default index is the first of the three
            assert http.post("/v1/indexes", json={"name": name, "model": "digits-cnn"}).status_code == 201
        refused = http.post("/v1/indexes", json={"name": "c", "model": "digits-cnn"})
        assert refused.status_code == 507 and "holds 3 indexes" in refused.json()["detail"], refused.text
        assert "LOGITSEARCH_MAX_INDEXES" in refused.json()["detail"] and "c" not in _index_names(http)
        assert http.delete("/v1/indexes/a").status_code == 200
        assert http.post("/v1/indexes", json={"name": "c", "model": "digits-cnn"}).status_code == 201


def test_indexes_on_disk_past_max_indexes_are_listed_unavailable_not_opened(settings: Settings) -> None:
    with serving(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        for name in ("a", "b"):
            assert http.post("/v1/indexes", json={"name": name, "model": "digits-cnn"}).status_code == 201
    with serving(settings.model_copy(update={"max_indexes": 2})) as url, httpx.Client(base_url=url, timeout=30) as http:
        listed = {index["name"]: index for index in http.get("/v1/indexes").json()["indexes"]}
        assert [listed[n]["status"] for n in ("a", "b", "default")] == ["ready", "unavailable", "ready"]
        assert "not opened" in listed["b"]["reason"] and "LOGITSEARCH_MAX_INDEXES" in listed["b"]["reason"]
        search = http.post("/v1/indexes/b/search", json={"queries": [{"logits": [0.0] * 10}]})
        assert search.status_code == 503 and "not opened" in search.json()["detail"]


def _index_names(http: httpx.Client) -> set[str]:
    return {index["name"] for index in http.get("/v1/indexes").json()["indexes"]}


def test_under_a_small_open_file_limit_creates_stop_at_507_and_connections_keep_coming(settings: Settings) -> None:
    """1,024 open files let a service create ~500 indexes, then fail with EMFILE (500) and refuse connections; the
    capacity is now computed from the limit at start. 320 files: (320 - 256 reserved) / 2 = 32 indexes."""
    port = free_port()
    server = start_serve_process(settings.data_dir, port, open_files=320)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            created = 1  # the default index
            while (
                answer := http.post("/v1/indexes", json={"name": f"i{created}", "model": "digits-cnn"})
            ).status_code == 201:
                created += 1
                assert created <= 40, "no limit was applied"
            assert answer.status_code == 507 and "open-file limit" in answer.json()["detail"], answer.text
            assert created == 32
            for name in ("i1", f"i{created - 1}"):
                items = {"items": [{"id": "x", "logits": [1.0] * 10}]}
                assert http.post(f"/v1/indexes/{name}/items", json=items).status_code == 200
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) for _ in range(40)]
        try:  # 40 new connections at once: each is served
            assert all(c.get("/health").status_code == 200 for c in clients)
        finally:
            for c in clients:
                c.close()
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
