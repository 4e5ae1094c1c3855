"""End to end over real HTTP: uvicorn serving the app, stopped and started again on the same data."""

from pathlib import Path

import httpx
import numpy as np
import pytest

from service.cli import main
from service.config import Settings
from tests.helpers import digit_png
from tests.servers import serving


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
