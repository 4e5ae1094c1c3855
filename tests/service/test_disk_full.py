"""A real full disk (a small tmpfs, where this machine lets the tests mount one) under a real server."""

import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from tests.servers import free_port, start_serve_process


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs, or a skip where mounting is not allowed (not root, no CAP_SYS_ADMIN)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(disk: Path) -> Path:
    """Write a ballast file until the disk is full; returns it (delete it to free the space)."""
    ballast = disk / "ballast"
    # Unbuffered: a buffered file keeps the part of a write that did not fit, and its close() fails on it.
    with open(ballast, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    return ballast


def _items(prefix: str, n: int) -> dict[str, list[dict[str, object]]]:
    return {"items": [{"id": f"{prefix}-{i}", "logits": [float(i)] * 10, "metadata": {"n": i}} for i in range(n)]}


def test_a_full_disk_refuses_writes_keeps_reads_and_loses_nothing(settings: Settings, small_disk: Path) -> None:
    """In process: 507 and nothing stored while full, reads served, writes again once freed, all of it there
    after a stop and a start on a disk still full. The slow test does the same with killed server processes."""
    data_dir = small_disk / "data"
    shutil.copytree(settings.data_dir, data_dir)
    on_disk = Settings(data_dir=data_dir, device="cpu", faiss_gpu="false", num_threads=1)
    with TestClient(create_app(on_disk)) as client:
        assert client.post("/v1/items", json=_items("early", 5)).status_code == 200
        ballast = _fill(small_disk)
        refused = client.post("/v1/items", json=_items("refused", 200))
        assert refused.status_code == 507, refused.text
        assert "disk is full" in refused.json()["detail"] and "nothing" in refused.json()["detail"]
        assert client.get("/health").status_code == 200
        search = client.post("/v1/search", json={"queries": [{"id": "early-3"}], "k": 1})
        assert search.status_code == 200 and search.json()["results"][0][0]["id"] == "early-3"
        ballast.unlink()
        for n in range(3):
            assert client.post("/v1/items", json=_items(f"late{n}", 4)).status_code == 200
        ballast = _fill(small_disk)  # the snapshot at the stop fails for lack of space; the log keeps all

    with TestClient(create_app(on_disk)) as client:  # starting needs no free space
        page = client.get("/v1/items", params={"limit": 1000, "offset": 1700}).json()
        ids = {item["id"] for item in page["items"]}
        assert page["count"] == 1797 + 5 + 12
        assert {f"late{n}-{i}" for n in range(3) for i in range(4)} <= ids and not any("refused" in i for i in ids)
        assert client.post("/v1/items", json=_items("still-full", 200)).status_code == 507
    assert not list((data_dir / "indexes" / "default").glob("*.tmp"))
    ballast.unlink()


@pytest.mark.slow
def test_a_full_disk_under_a_server_process_killed_and_restarted(settings: Settings, small_disk: Path) -> None:
    data_dir = small_disk / "data"
    shutil.copytree(settings.data_dir, data_dir)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_serve_process(data_dir, port)
    try:
        assert httpx.post(f"{url}/v1/items", json=_items("early", 5)).status_code == 200
        ballast = _fill(small_disk)
        refused = httpx.post(f"{url}/v1/items", json=_items("refused", 200), timeout=30)
        assert refused.status_code == 507, refused.text
        assert "disk is full" in refused.json()["detail"] and "nothing" in refused.json()["detail"]
        assert httpx.get(f"{url}/health").status_code == 200
        search = httpx.post(f"{url}/v1/search", json={"queries": [{"id": "early-3"}], "k": 1})
        assert search.status_code == 200 and search.json()["results"][0][0]["id"] == "early-3"
        ballast.unlink()
        for n in range(3):
            assert httpx.post(f"{url}/v1/items", json=_items(f"late{n}", 4)).status_code == 200
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)

    ballast = _fill(small_disk)  # restarting needs no free space
    server = start_serve_process(data_dir, port)
    try:
        page = httpx.get(f"{url}/v1/items", params={"limit": 1000, "offset": 1700}).json()
        ids = {item["id"] for item in page["items"]}
        assert page["count"] == 1797 + 5 + 12
        assert {f"late{n}-{i}" for n in range(3) for i in range(4)} <= ids and not any("refused" in i for i in ids)
        assert httpx.post(f"{url}/v1/items", json=_items("still-full", 200)).status_code == 507
    finally:
        server.send_signal(signal.SIGTERM)  # the shutdown snapshot fails for lack of space; the log keeps all
        assert server.wait(timeout=30) == 0  # a graceful stop exits 0, full disk or not
    assert not list((data_dir / "indexes" / "default").glob("*.tmp"))
    ballast.unlink()
    server = start_serve_process(data_dir, port)
    try:
        assert httpx.get(f"{url}/v1/info").json()["index"]["count"] == 1797 + 5 + 12
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
