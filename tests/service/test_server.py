"""End to end over real HTTP: uvicorn serving the app, stopped and started again on the same data."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn

from service.app import create_app
from service.cli import main
from service.config import Settings
from service.http.server import server_config
from tests.service.test_api import digit_png


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """Run uvicorn on 127.0.0.1 in a thread until the block ends; yields the base URL."""
    port = _free_port()
    config = server_config(create_app(settings), settings, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_add_search_restart_keeps_items(settings: Settings, rng: np.random.Generator) -> None:
    vectors = (rng.standard_normal((20, 10)) * 6).astype(np.float32)
    items = [{"id": f"user-{i}", "logits": v.tolist(), "metadata": {"batch": i % 2}} for i, v in enumerate(vectors)]
    with serving(settings) as url:
        assert httpx.get(f"{url}/ready").status_code == 200
        response = httpx.post(f"{url}/v1/items", json={"items": items})
        assert response.json() == {"upserted": 20, "count": 1817}
        assert httpx.delete(f"{url}/v1/items/user-0").status_code == 200
        before = httpx.post(f"{url}/v1/search", json={"queries": [{"id": "user-5"}], "k": 5}).json()
        assert before["results"][0][0] == {"id": "user-5", "distance": 0.0, "metadata": {"batch": 1}}

    with serving(settings) as url:
        assert httpx.get(f"{url}/v1/info").json()["index"]["count"] == 1816
        for i in range(1, 20):
            stored = httpx.get(f"{url}/v1/items/user-{i}").json()
            assert stored["logits"] == vectors[i].tolist() and stored["metadata"] == {"batch": i % 2}
        assert httpx.get(f"{url}/v1/items/user-0").status_code == 404
        after = httpx.post(f"{url}/v1/search", json={"queries": [{"id": "user-5"}], "k": 5}).json()
        assert after == before


def test_cli_search_prints_table(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    image = tmp_path / "query.png"
    image.write_bytes(digit_png(9))
    with serving(settings) as url:
        assert main(["search", "--image", str(image), "-k", "3", "--url", url]) == 0
        table = capsys.readouterr().out.splitlines()
        assert table[0].split() == ["rank", "distance", "id", "metadata"]
        assert table[1].split()[:3] == ["1", "0.0000", "digits-9"] and len(table) == 4
        for failing, said in ((["--id", "nope"], "404"), (["--id", "digits-1", "-k", "0"], "422 body.k: ")):
            caplog.clear()
            assert main(["search", *failing, "--url", url]) == 2
            errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
            assert len(errors) == 1 and said in errors[0] and "\n" not in errors[0], errors
            assert "{" not in errors[0] and "type=" not in errors[0]  # no JSON or pydantic dump
